// Jobs page: every job with status, owner, start, duration and a progress bar per stage;
// filter by status and name; refreshed every 2 s.
"use strict";
(() => {
  const { el, getJSON, ctrl, fmtDuration, fmtTime, jobUrl, statusBadge } = Disco;
  const MAX_ROWS = 200; // jobinfo is fetched for the rows shown only
  const infos = new Map(); // name -> jobinfo; finished jobs' info does not change
  const state = { status: new URLSearchParams(location.search).get("status") || "", name: "" };

  Disco.nav("index.html");

  document.querySelectorAll("#status-filter .chip").forEach((chip) => {
    chip.classList.toggle("on", chip.dataset.status === state.status);
    chip.addEventListener("click", () => {
      state.status = chip.dataset.status;
      document.querySelectorAll("#status-filter .chip").forEach((c) => c.classList.toggle("on", c === chip));
      refresh();
    });
  });
  const nameBox = document.getElementById("name-filter");
  nameBox.addEventListener("input", () => { state.name = nameBox.value.trim().toLowerCase(); refresh(); });

  let latest = [];

  function stageBars(pipeline) {
    if (!pipeline || !pipeline.length) return el("span", { class: "muted" }, "no stages");
    return el("div", { class: "stages" }, pipeline.map(([stage, pending, waiting, running, done, failed]) => {
      const total = Math.max(1, waiting + running + done);
      const pct = (n) => (100 * n / total).toFixed(1) + "%";
      return el("div", { class: "stage-row", title: `${stage}: ${pending} pending, ${waiting} waiting, ${running} running, ${done} done, ${failed} failed` },
        el("span", { class: "name" }, stage),
        el("div", { class: "bar" },
          el("div", { class: "done", style: `width:${pct(done)}` }),
          el("div", { class: "running", style: `width:${pct(running)}` })),
        el("span", { class: "count" }, `${done}/${waiting + running + done}` + (failed ? ` ✗${failed}` : "")));
    }));
  }

  function render() {
    const rows = latest.filter(([, status, name]) =>
      (!state.status || status === state.status) && (!state.name || name.toLowerCase().includes(state.name)));
    const body = document.querySelector("#jobs tbody");
    const now = Date.now() / 1000;
    Disco.fill(body, ...rows.slice(0, MAX_ROWS).map(([start, status, name]) => {
      const info = infos.get(name);
      const end = info && info.end_time ? info.end_time : now;
      return el("tr", { "data-job": name, "data-status": status },
        el("td", {}, el("a", { href: jobUrl(name), class: "job-link" }, name)),
        el("td", {}, statusBadge(status)),
        el("td", {}, info ? info.owner : ""),
        el("td", {}, fmtTime(start)),
        el("td", { class: "num" }, info ? fmtDuration(end - (info.start_time || start)) : ""),
        el("td", {}, info ? stageBars(info.pipeline) : ""));
    }));
    document.getElementById("no-jobs").hidden = rows.length > 0;
    document.getElementById("job-count").textContent =
      `${rows.length} of ${latest.length} job${latest.length === 1 ? "" : "s"}` +
      (rows.length > MAX_ROWS ? ` (first ${MAX_ROWS} shown)` : "");
  }

  async function refresh() {
    render();
    const shown = latest.filter(([, status, name]) =>
      (!state.status || status === state.status) && (!state.name || name.toLowerCase().includes(state.name)))
      .slice(0, MAX_ROWS);
    const stale = shown.filter(([, status, name]) => {
      const info = infos.get(name);
      return !info || status === "active" || info.active !== status;
    });
    await Promise.all(stale.map(async ([, , name]) => {
      try { infos.set(name, await getJSON(ctrl("jobinfo", { name }))); } catch (e) { infos.delete(name); }
    }));
    render();
  }

  Disco.poll(async () => {
    latest = (await getJSON(ctrl("joblist"))) || [];
    await refresh();
  }, 2000);
})();
