// Nodes page: running tasks, slots, disk, last contact, blacklist; the config table.
"use strict";
(() => {
  const { el, getJSON, post, ctrl, fmtBytes, fmtTime, jobUrl } = Disco;
  Disco.nav("nodes.html");

  function ago(unix) {
    if (!unix) return "never";
    const s = Math.max(0, Date.now() / 1000 - unix);
    return s < 5 ? "just now" : s < 120 ? `${Math.round(s)} s ago` : fmtTime(unix);
  }

  async function setListed(op, host) {
    try {
      await post(ctrl(op), host);
      Disco.flash(`${host}: ${op === "blacklist" ? "blacklisted" : op === "whitelist" ? "whitelisted" : op}`);
      await refreshNodes();
    } catch (e) { Disco.flash(e.message, "error"); }
  }

  async function refreshNodes() {
    const nodes = (await getJSON(ctrl("nodeinfo"))) || {};
    const body = document.querySelector("#nodes tbody");
    Disco.fill(body, ...Object.keys(nodes).sort().map((host) => {
      const n = nodes[host];
      const tasks = n.tasks || [];
      const counts = {};
      for (const job of tasks) counts[job] = (counts[job] || 0) + 1;
      const total = n.diskfree + n.diskused;
      return el("tr", { "data-node": host, class: n.blacklisted ? "blacklisted" : null },
        el("td", {}, el("span", { class: "dot " + (n.connected ? "up" : "down"), title: n.connected ? "connected" : "disconnected" }), host),
        el("td", {}, el("div", { class: "slots", title: `${tasks.length} of ${n.max_workers} busy` },
          Array.from({ length: n.max_workers }, (_, i) => el("span", { class: "slot" + (i < tasks.length ? " busy" : "") }))),
          el("span", { class: "muted", style: "font-size:12px" }, `${tasks.length}/${n.max_workers}`)),
        el("td", { class: "running-tasks" }, Object.keys(counts).length
          ? Object.entries(counts).map(([job, c]) => el("div", {}, el("a", { href: jobUrl(job) }, job), c > 1 ? ` ×${c}` : ""))
          : el("span", { class: "muted" }, "idle")),
        el("td", {}, total ? el("div", { class: "disk", title: `${fmtBytes(n.diskused * 1024)} used of ${fmtBytes(total * 1024)}` },
          el("div", { class: "bar" }, el("div", { class: "used", style: `width:${(100 * n.diskused / total).toFixed(1)}%` })),
          el("span", { class: "muted", style: "font-size:12px" }, `${fmtBytes(n.diskfree * 1024)} free`)) : el("span", { class: "muted" }, "unknown")),
        el("td", {}, ago(n.last_contact)),
        el("td", { class: "num" }, String(n.job_ok)),
        el("td", { class: "num" }, String(n.data_error)),
        el("td", { class: "num" }, String(n.error)),
        el("td", {}, n.blacklisted
          ? el("button", { class: "small secondary", onclick: () => setListed("whitelist", host) }, "Whitelist")
          : el("button", { class: "small danger", onclick: () => setListed("blacklist", host) }, "Blacklist")));
    }));
  }

  // -- config table ---------------------------------------------------------------------
  const configBody = document.querySelector("#config tbody");
  function configRow(spec = "", workers = "") {
    const row = el("tr", {},
      el("td", {}, el("input", { type: "text", value: spec, "aria-label": "nodes", class: "spec" })),
      el("td", {}, el("input", { type: "number", min: 0, value: workers, "aria-label": "max workers", class: "workers" })),
      el("td", {}, el("button", { class: "small secondary", onclick: () => row.remove() }, "Remove")));
    return row;
  }
  async function loadConfig() {
    const table = (await getJSON(ctrl("load_config_table"))) || [];
    Disco.fill(configBody, ...table.map(([spec, n]) => configRow(spec, n)));
  }
  document.getElementById("add-row").addEventListener("click", () => configBody.append(configRow()));
  document.getElementById("save-config").addEventListener("click", async () => {
    const rows = [...configBody.querySelectorAll("tr")].map((tr) =>
      [tr.querySelector(".spec").value.trim(), tr.querySelector(".workers").value.trim()]).filter(([s]) => s);
    try {
      const answer = await post(ctrl("save_config_table"), rows);
      Disco.flash(answer || "table saved!");
      await Promise.all([loadConfig(), refreshNodes(), refreshGc()]);
    } catch (e) { Disco.flash(e.message, "error"); }
  });

  // -- GC blacklist -----------------------------------------------------------------------
  async function refreshGc() {
    const [listed, safe, nodes] = await Promise.all([
      getJSON(ctrl("get_gc_blacklist")), getJSON("/ddfs/ctrl/safe_gc_blacklist"), getJSON(ctrl("nodeinfo"))]);
    const box = document.getElementById("gc-blacklist");
    const select = el("select", { "aria-label": "node" }, Object.keys(nodes || {}).sort()
      .filter((h) => !listed.includes(h)).map((h) => el("option", { value: h }, h)));
    Disco.fill(box,
      listed.length ? el("table", {}, listed.map((h) => el("tr", {},
        el("td", {}, h, safe.includes(h) ? el("span", { class: "badge status-ready", style: "margin-left:8px" }, "safe to remove") : null),
        el("td", { style: "text-align:right" }, el("button", { class: "small secondary", onclick: async () => { await setListed("gc_whitelist", h); refreshGc(); } }, "Remove from list")))))
        : el("div", { class: "empty" }, "No node is on the GC blacklist."),
      el("div", { class: "toolbar", style: "margin-top:10px" }, select,
        el("button", { class: "secondary", onclick: async () => { if (select.value) { await setListed("gc_blacklist", select.value); refreshGc(); } } }, "Add to GC blacklist")));
  }

  loadConfig().catch((e) => Disco.flash(e.message, "error"));
  refreshGc().catch((e) => console.warn(e));
  Disco.poll(refreshNodes, 2000);
})();
