// DDFS page: tags by prefix; a tag's versions, attributes and entries with the
// replica locations of each blob and links that download it.
"use strict";
(() => {
  const { el, getJSON, fmtTime, httpUrl } = Disco;
  Disco.nav("ddfs.html");
  const params = new URLSearchParams(location.search);
  const prefixBox = document.getElementById("prefix");
  prefixBox.value = params.get("prefix") || "";
  let current = params.get("tag") || "";

  const hostOf = (url) => (/^[a-z]+:\/\/([^/]+)\//.exec(url) || [])[1] || "";
  const blobName = (url) => decodeURIComponent(url.split("/").pop() || url);

  async function listTags() {
    const prefix = prefixBox.value.trim();
    const names = (await getJSON("/ddfs/tags/" + encodeURIComponent(prefix))) || [];
    document.getElementById("tag-count").textContent = `${names.length} tag${names.length === 1 ? "" : "s"}`;
    Disco.fill(document.getElementById("tags"), ...names.map((n) =>
      el("li", { "data-tag": n }, el("a", { href: "?tag=" + encodeURIComponent(n), class: n === current ? "url active" : "url",
        onclick: (ev) => { ev.preventDefault(); show(n); } }, n))));
  }

  function entryRow(entry, i) {
    const first = entry[0] || "";
    const isTag = first.startsWith("tag://");
    return el("tr", {},
      el("td", { class: "num muted" }, String(i + 1)),
      el("td", {}, isTag ? el("a", { href: "?tag=" + encodeURIComponent(first.replace(/^tag:\/\/([^/]*\/)?/, "")), class: "url",
        onclick: (ev) => { ev.preventDefault(); show(first.replace(/^tag:\/\/([^/]*\/)?/, "")); } }, first)
        : el("span", { class: "url" }, blobName(first))),
      el("td", {}, isTag ? "" : entry.map((url) => {
        const href = httpUrl(url);
        return el("div", { class: "replica" }, el("span", { class: "muted" }, hostOf(url) || "?"), " ",
          href ? el("a", { href, download: blobName(url), class: "download" }, "download") : el("span", { class: "url" }, url));
      })));
  }

  async function show(name) {
    current = name;
    history.replaceState(null, "", "?tag=" + encodeURIComponent(name) + (prefixBox.value ? "&prefix=" + encodeURIComponent(prefixBox.value) : ""));
    document.querySelectorAll("#tags a").forEach((a) => a.classList.toggle("active", a.textContent === name));
    const box = document.getElementById("tag");
    let doc, versions;
    try {
      [doc, versions] = await Promise.all([
        getJSON("/ddfs/tag/" + encodeURIComponent(name)),
        getJSON("/ddfs/ctrl/tag_versions?tag=" + encodeURIComponent(name)).catch(() => []),
      ]);
    } catch (e) {
      Disco.fill(box, el("h2", {}, name), el("div", { class: "empty" }, e.message));
      return;
    }
    const attrs = Object.entries(doc["user-data"] || {});
    Disco.fill(box,
      el("h2", { id: "tag-name" }, name),
      el("table", { class: "kv" },
        el("tr", {}, el("th", {}, "Version"), el("td", { class: "url" }, doc.id)),
        el("tr", {}, el("th", {}, "Last modified"), el("td", {}, doc["last-modified"])),
        el("tr", {}, el("th", {}, "Entries"), el("td", {}, String(doc.urls.length)))),
      el("h2", { style: "margin-top:16px" }, "Attributes"),
      attrs.length ? el("table", { class: "kv", id: "attributes" }, attrs.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", { class: "url" }, v))))
        : el("div", { class: "empty" }, "No attributes."),
      el("h2", { style: "margin-top:16px" }, "Entries"),
      doc.urls.length ? el("table", { id: "entries" },
        el("thead", {}, el("tr", {}, el("th", { class: "num" }, "#"), el("th", {}, "Blob"), el("th", {}, "Replicas"))),
        el("tbody", {}, doc.urls.slice(0, 500).map(entryRow))) : el("div", { class: "empty" }, "No entries."),
      doc.urls.length > 500 ? el("div", { class: "muted" }, `… ${doc.urls.length - 500} more`) : null,
      el("h2", { style: "margin-top:16px" }, "Versions"),
      el("table", { id: "versions" },
        el("thead", {}, el("tr", {}, el("th", {}, "Version"), el("th", {}, "Written"), el("th", {}, "Stored on"))),
        el("tbody", {}, versions.map((v) => el("tr", {},
          el("td", { class: "url" }, v.id + (v.id === doc.id ? " (current)" : "")),
          el("td", {}, fmtTime(v.time)),
          el("td", {}, v.replicas.map((u) => el("div", {}, el("a", { href: httpUrl(u) || "#", class: "url" }, hostOf(u))))))))));
  }

  async function gc() {
    const status = await getJSON("/ddfs/ctrl/gc_status");
    document.getElementById("gc-status").textContent = status || "GC is idle";
  }
  document.getElementById("gc-start").addEventListener("click", async () => {
    Disco.flash(await getJSON("/ddfs/ctrl/gc_start"));
    gc();
  });

  let timer;
  prefixBox.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(listTags, 300); });
  Disco.poll(listTags, 10000);
  Disco.poll(gc, 5000);
  if (current) show(current);
})();
