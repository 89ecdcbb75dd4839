// Settings page: max_failure_rate and accept_new_jobs (save_settings), the master's
// version and its configuration.
"use strict";
(() => {
  const { el, getJSON, post, ctrl } = Disco;
  Disco.nav("settings.html");

  async function load() {
    const s = await getJSON(ctrl("get_settings"));
    document.getElementById("max-failure-rate").value = s.max_failure_rate;
    document.getElementById("accept-new-jobs").value = String(s.accept_new_jobs ? 1 : 0);
  }

  document.getElementById("save-settings").addEventListener("click", async () => {
    try {
      const answer = await post(ctrl("save_settings"), {
        max_failure_rate: document.getElementById("max-failure-rate").value,
        accept_new_jobs: document.getElementById("accept-new-jobs").value,
      });
      Disco.flash(answer || "Settings saved");
      await load();
    } catch (e) { Disco.flash(e.message, "error"); }
  });

  function fill(id, obj) {
    Disco.fill(document.getElementById(id), ...Object.entries(obj).map(([k, v]) =>
      el("tr", {}, el("th", {}, k), el("td", { class: "url" }, typeof v === "string" ? v : JSON.stringify(v)))));
  }

  getJSON("/disco/version").then((v) => { document.getElementById("master-version").textContent = v; });
  getJSON(ctrl("master_config")).then((c) => { fill("master-config", c.master); fill("ddfs-config", c.ddfs); });
  load().catch((e) => Disco.flash(e.message, "error"));
})();
