// Job page: summary, stage counters, the last failure, task timeline, the live event log
// (rawevents with 0.5 byte offsets), results and the job pack's parameters; kill/purge.
"use strict";
(() => {
  const { el, getJSON, post, ctrl, request, fmtDuration, fmtTime, fmtBytes, urlLink, statusBadge } = Disco;
  const name = new URLSearchParams(location.search).get("name") || "";
  const MAX_EVENTS = 3000; // lines kept on the page
  const TAIL_BYTES = 65536; // the first read starts this far from the end of the log
  let info = null;

  Disco.nav("");
  document.title = "Disco: " + name;
  document.getElementById("job-name").textContent = name;

  // -- summary, stages, failure ------------------------------------------------------
  function kvRow(key, value) {
    return el("tr", {}, el("th", {}, key), el("td", {}, value));
  }

  function renderSummary() {
    const end = info.end_time || Date.now() / 1000;
    const running = {};
    for (const h of info.hosts || []) running[h] = (running[h] || 0) + 1;
    Disco.fill(document.getElementById("job-status"), statusBadge(info.active));
    Disco.fill(document.getElementById("summary"),
      kvRow("Status", statusBadge(info.active)),
      kvRow("Owner", info.owner),
      kvRow("Started", fmtTime(info.start_time) || info.timestamp),
      kvRow("Duration", fmtDuration(end - info.start_time) + (info.end_time ? "" : " (running)")),
      kvRow("Worker", el("span", { class: "url" }, info.worker)),
      kvRow("Running on", Object.keys(running).length
        ? Object.entries(running).map(([h, n]) => `${h} (${n})`).join(", ") : el("span", { class: "muted" }, "–")),
      kvRow("Failed attempts", String((info.failed_attempts || []).length)));
    document.getElementById("kill").disabled = info.active !== "active";
  }

  function renderStages() {
    const body = document.querySelector("#stages tbody");
    Disco.fill(body, ...info.pipeline.map(([stage, pending, waiting, running, done, failed]) => {
      const total = Math.max(1, waiting + running + done);
      const pct = (n) => (100 * n / total).toFixed(1) + "%";
      return el("tr", { "data-stage": stage },
        el("td", {}, stage),
        ...[pending, waiting, running, done].map((n) => el("td", { class: "num" }, String(n))),
        el("td", { class: "num" + (failed ? " failed-count" : "") , style: failed ? "color:#d2434b;font-weight:600" : null }, String(failed)),
        el("td", { style: "width:35%" }, el("div", { class: "bar" },
          el("div", { class: "done", style: `width:${pct(done)}` }),
          el("div", { class: "running", style: `width:${pct(running)}` }))));
    }));
    if (!info.pipeline.length) Disco.fill(body, el("tr", {}, el("td", { colspan: 7, class: "muted" }, "No stages.")));
  }

  function renderFailure() {
    const box = document.getElementById("failure");
    const f = info.last_failure;
    box.hidden = !f;
    if (!f) return;
    const headline = f.exc_type ? `${f.exc_type}: ${f.exc_message}` : (f.exc_message || f.message);
    const where = f.stage ? `in ${f.stage} task ${f.taskid} on ${f.host || "?"}` +
      (f.attempt ? ` (attempt ${f.attempt})` : "") + (f.input ? `, reading ${f.input}` : "") : "";
    Disco.fill(box,
      el("h2", {}, info.active === "dead" ? "The job failed" : "Last failure"),
      el("div", { class: "headline", id: "failure-headline" }, headline),
      where ? el("div", { class: "muted" }, where) : null,
      f.traceback ? el("div", {}, el("div", { style: "margin-top:8px;font-weight:600" }, "Remote traceback"),
        el("pre", { id: "failure-traceback" }, f.traceback)) : null,
      f.output_tail ? el("div", {}, el("div", { style: "margin-top:8px;font-weight:600" }, "Last output of the worker"),
        el("pre", {}, f.output_tail)) : null);
  }

  // -- results --------------------------------------------------------------------------
  const stageResults = new Map();

  function urlList(urls) {
    return el("ul", { class: "urls" }, urls.map((entry) => {
      const replicas = Array.isArray(entry) ? entry : [entry];
      return el("li", {}, urlLink(replicas[0]),
        replicas.length > 1 ? el("div", { class: "replicas" }, "(", replicas.slice(1).map((u) => [urlLink(u), " "]), ")") : null);
    }));
  }

  async function renderResults() {
    const box = document.getElementById("results");
    if (info.results && info.results.length) {
      box.className = "";
      Disco.fill(box, urlList(info.results.slice(0, 200)),
        info.results.length > 200 ? el("div", { class: "muted" }, `… ${info.results.length - 200} more`) : null);
    }
    for (const [stage, , waiting, running, done] of info.pipeline) {
      if (stageResults.has(stage) || waiting + running > 0 || done === 0) continue;
      try {
        stageResults.set(stage, await getJSON(ctrl("get_stageresults", { name, stage })));
      } catch (e) {
        continue; // 404 until the stage has finished
      }
    }
    Disco.fill(document.getElementById("stage-results"), ...[...stageResults].map(([stage, urls]) =>
      el("details", {}, el("summary", {}, `Stage ${stage}: ${urls.length} output${urls.length === 1 ? "" : "s"}`),
        urlList(urls.slice(0, 200)))));
  }

  // -- parameters (job pack) --------------------------------------------------------------
  async function renderParams() {
    const box = document.getElementById("params");
    try {
      const pack = await JobPack.read(name);
      const d = pack.jobdict;
      const rows = [
        kvRow("Prefix", d.prefix),
        kvRow("Pipeline", d.pipeline
          ? d.pipeline.map((s) => `${s[0]} (${s[1]}${s[2] ? ", concurrent" : ""})`).join(" → ") || "empty"
          : `${((info && info.pipeline) || []).map((r) => r[0]).join(" → ") || "empty"} ` +
            `(classic job: map ${d["map?"] ? "yes" : "no"}, reduce ${d["reduce?"] ? "yes" : "no"}, nr_reduces ${d.nr_reduces})`),
        kvRow("Scheduler", JSON.stringify(d.scheduler || {})),
        kvRow("Save results", d.save_results ? `yes (${d.save_info || "ddfs"})` : "no"),
        kvRow("Inputs", String((d.inputs || d.input || []).length)),
        kvRow("Job pack", `version ${pack.version}, ${fmtBytes(pack.sizes.total)}: job home ${fmtBytes(pack.sizes.jobhome)}, job data ${fmtBytes(pack.sizes.jobdata)}`),
      ];
      const envs = Object.entries(pack.jobenvs || {});
      if (envs.length) rows.push(kvRow("Environment", el("div", {}, envs.map(([k, v]) => el("div", { class: "url" }, `${k}=${v}`)))));
      const other = Object.fromEntries(Object.entries(d).filter(([k]) =>
        !["prefix", "pipeline", "scheduler", "save_results", "save_info", "inputs", "input", "owner", "worker",
          "map?", "reduce?", "nr_reduces"].includes(k)));
      if (Object.keys(other).length) rows.push(kvRow("Other", el("span", { class: "url" }, JSON.stringify(other))));
      const inputs = (info && info.inputs) || [];
      box.className = "";
      Disco.fill(box, el("table", { class: "kv", id: "params-table" }, rows),
        inputs.length ? el("details", {}, el("summary", {}, `Input URLs (${inputs.length})`),
          urlList(inputs.slice(0, 100)), inputs.length > 100 ? el("div", { class: "muted" }, `… ${inputs.length - 100} more`) : null) : null);
    } catch (e) {
      box.textContent = "The job pack could not be read: " + e.message;
    }
  }

  // -- timeline ---------------------------------------------------------------------------
  async function refreshTimeline() {
    const data = await getJSON(ctrl("task_attempts", { name }));
    const failed = data.attempts.filter((a) => a.outcome === "failed").length;
    document.getElementById("timeline-note").textContent =
      `${data.attempts.length} attempt${data.attempts.length === 1 ? "" : "s"}` + (failed ? `, ${failed} failed` : "");
    Timeline.render(document.getElementById("timeline"), data, info && info.start_time,
      info ? info.pipeline.map((r) => r[0]) : []);
  }

  // -- events: rawevents with the 0.5 offset protocol (master-api.md 4.3) -------------------
  const events = { offset: null, lines: 0, filter: "" };
  const box = document.getElementById("events");

  function eventClass(msg) {
    if (/^(ERROR|FATAL)/.test(msg)) return "error";
    if (/^WARN/.test(msg)) return "warning";
    if (/^READY/.test(msg)) return "ready";
    return "";
  }

  function addEvents(list) {
    const atBottom = box.scrollTop + box.clientHeight >= box.scrollHeight - 20;
    for (const [ts, host, msg] of list) {
      const row = el("div", { class: "event " + eventClass(msg) },
        el("span", { class: "ts" }, ts), el("span", { class: "host", title: host }, host), el("span", { class: "msg" }, msg));
      row.hidden = !!events.filter && !row.textContent.toLowerCase().includes(events.filter);
      box.append(row);
      events.lines++;
    }
    while (box.childElementCount > MAX_EVENTS) box.firstElementChild.remove();
    if (atBottom) box.scrollTop = box.scrollHeight;
    document.getElementById("event-count").textContent = `${events.lines} event${events.lines === 1 ? "" : "s"}`;
  }

  // Parse whole lines of `bytes`; returns how many bytes were consumed (each line + \n).
  function consume(bytes, skipFirstPartial) {
    const dec = new TextDecoder();
    let pos = 0, used = 0;
    const parsed = [];
    if (skipFirstPartial) {
      const nl = bytes.indexOf(10);
      if (nl < 0) return 0;
      pos = used = nl + 1;
    }
    while (pos < bytes.length) {
      const nl = bytes.indexOf(10, pos);
      if (nl < 0) break; // a partial line: read again from here next time
      const line = dec.decode(bytes.subarray(pos, nl));
      pos = nl + 1;
      if (!line.trim()) { used = pos; continue; }
      try { parsed.push(JSON.parse(line)); } catch (e) { break; }
      used = pos;
    }
    addEvents(parsed);
    return used;
  }

  async function refreshEvents() {
    const path = ctrl("rawevents", { name });
    if (events.offset === null) {
      const resp = await request(path, { headers: { Range: `bytes=-${TAIL_BYTES}` } });
      const m = /bytes (\d+)-\d+\/\d+/.exec(resp.headers.get("Content-Range") || "");
      const start = resp.status === 206 && m ? Number(m[1]) : 0;
      const bytes = new Uint8Array(await resp.arrayBuffer());
      events.offset = start + consume(bytes, start > 0);
      return;
    }
    const headers = events.offset > 0 ? { Range: `bytes=${events.offset}-` } : {};
    const bytes = new Uint8Array(await (await request(path, { headers })).arrayBuffer());
    events.offset += consume(bytes, false);
  }

  document.getElementById("event-filter").addEventListener("input", (ev) => {
    events.filter = ev.target.value.trim().toLowerCase();
    for (const row of box.children) row.hidden = !!events.filter && !row.textContent.toLowerCase().includes(events.filter);
  });

  // -- actions ----------------------------------------------------------------------------
  document.getElementById("kill").addEventListener("click", async () => {
    if (!(await Disco.confirmAction(`Kill the job ${name}? Its running tasks are stopped.`, "Kill job"))) return;
    try { await post(ctrl("kill_job"), name); Disco.flash("Job killed"); } catch (e) { Disco.flash(e.message, "error"); }
  });
  document.getElementById("purge").addEventListener("click", async () => {
    if (!(await Disco.confirmAction(`Purge ${name}? The job is killed and all its data, results and events are deleted.`, "Purge job"))) return;
    try { await post(ctrl("purge_job"), name); location.href = "index.html"; } catch (e) { Disco.flash(e.message, "error"); }
  });

  // -- polling ----------------------------------------------------------------------------
  let paramsShown = false;
  async function tick() {
    try {
      info = await getJSON(ctrl("jobinfo", { name }));
    } catch (e) {
      if (e.status === 404) {
        Disco.fill(document.querySelector("main"), el("h1", {}, name), el("div", { class: "panel empty" }, "Unknown job (it may have been purged)."));
        return false;
      }
      throw e;
    }
    renderSummary();
    renderStages();
    renderFailure();
    await Promise.all([refreshTimeline(), refreshEvents(), renderResults()]);
    if (!paramsShown) { paramsShown = true; renderParams(); }
    return true;
  }

  (async function loop() {
    let again = true;
    try { again = await tick(); } catch (e) { console.warn(e); }
    if (again !== false) setTimeout(loop, info && info.active === "active" ? 1000 : 5000);
  })();
})();
