// Shared code of the Disco web UI pages: the one HTTP helper, DOM and format helpers,
// the navigation bar, polling and the action confirmation.
"use strict";

const Disco = (() => {
  // Headers added to requests that change something (POST/PUT/DELETE).  The optional
  // master auth token (DISCO_AUTH_TOKEN) goes here: this is the one place to change.
  function writeHeaders() {
    return {};
  }

  // Every request of the pages goes through here.  Returns the Response; throws an
  // Error with the server's text on a non-2xx status.
  async function request(path, { method = "GET", body, headers = {}, raw = false } = {}) {
    const opts = { method, headers: { ...headers }, cache: "no-store" };
    if (method !== "GET" && method !== "HEAD") Object.assign(opts.headers, writeHeaders());
    if (body !== undefined) {
      opts.body = raw ? body : JSON.stringify(body);
      if (!raw) opts.headers["Content-Type"] = "application/json";
    }
    const resp = await fetch(path, opts);
    if (!resp.ok) {
      const text = await resp.text();
      const err = new Error(`${method} ${path}: ${resp.status} ${text}`.trim());
      err.status = resp.status;
      throw err;
    }
    return resp;
  }

  async function getJSON(path) {
    const text = await (await request(path)).text();
    return text.trim() ? JSON.parse(text) : null;
  }

  async function post(path, body) {
    const text = await (await request(path, { method: "POST", body })).text();
    return text.trim() ? JSON.parse(text) : null;
  }

  const ctrl = (op, params = {}) => {
    const q = new URLSearchParams(params).toString();
    return `/disco/ctrl/${op}${q ? "?" + q : ""}`;
  };

  // el("a", {href: "x", class: "y"}, "text", child, ...)
  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(node.dataset, v);
      else node.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  // node.replaceChildren(...) without the null/false children (which DOM would print).
  function fill(node, ...children) {
    node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
    return node;
  }

  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds)) return "";
    seconds = Math.max(0, seconds);
    if (seconds < 60) return seconds.toFixed(seconds < 10 ? 1 : 0) + " s";
    const m = Math.floor(seconds / 60), s = Math.floor(seconds % 60);
    if (m < 60) return `${m} min ${s} s`;
    const h = Math.floor(m / 60);
    return `${h} h ${m % 60} min`;
  }

  function fmtTime(unix) {
    if (!unix) return "";
    const d = new Date(unix * 1000);
    const p = (n) => String(n).padStart(2, "0");
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
      `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  }

  function fmtBytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n : n.toFixed(n < 10 ? 1 : 0)) + " " + units[i];
  }

  const jobUrl = (name) => "job.html?name=" + encodeURIComponent(name);

  // disco://host/path and dir://host/path are served by that host's data server on
  // DISCO_PORT, which is the master's port (as the Python client resolves them).
  function httpUrl(url) {
    const m = /^(disco|dir):\/\/([^/]+)\/(.*)$/.exec(url);
    if (m) return `${location.protocol}//${m[2]}:${location.port || 80}/${m[3]}`;
    if (/^tag:\/\//.test(url)) return "ddfs.html?tag=" + encodeURIComponent(url.replace(/^tag:\/\/([^/]*\/)?/, ""));
    if (/^https?:\/\//.test(url)) return url;
    return null;
  }

  function urlLink(url) {
    const href = httpUrl(url);
    return href ? el("a", { href, class: "url" }, url) : el("span", { class: "url" }, url);
  }

  const PAGES = [
    ["index.html", "Jobs"],
    ["nodes.html", "Nodes"],
    ["ddfs.html", "DDFS"],
    ["settings.html", "Settings"],
  ];

  function nav(current) {
    const bar = el("nav", { class: "topbar" },
      el("a", { href: "index.html", class: "brand" }, "Disco"),
      PAGES.map(([href, label]) =>
        el("a", { href, class: href === current ? "active" : null }, label)),
      el("span", { class: "spacer" }),
      el("span", { id: "version", class: "muted" }));
    document.body.prepend(bar);
    getJSON("/disco/version").then((v) => {
      document.getElementById("version").textContent = "master " + v;
    }).catch(() => {});
  }

  function flash(text, kind = "ok") {
    let box = document.getElementById("flash");
    if (!box) {
      box = el("div", { id: "flash" });
      document.body.append(box);
    }
    box.className = "flash " + kind;
    box.textContent = text;
    clearTimeout(flash.timer);
    flash.timer = setTimeout(() => { box.className = "flash hidden"; }, 4000);
  }

  // Run fn now and then every ms milliseconds (after the previous run ended).
  function poll(fn, ms) {
    let stopped = false;
    const loop = async () => {
      if (stopped) return;
      try { await fn(); } catch (e) { console.warn(e); }
      if (!stopped) setTimeout(loop, ms);
    };
    loop();
    return () => { stopped = true; };
  }

  // A confirmation dialog; resolves true when the user confirms.
  function confirmAction(text, okLabel = "Confirm") {
    return new Promise((resolve) => {
      const close = (answer) => { overlay.remove(); resolve(answer); };
      const overlay = el("div", { class: "overlay", role: "dialog", "aria-modal": "true" },
        el("div", { class: "dialog" },
          el("p", {}, text),
          el("div", { class: "buttons" },
            el("button", { class: "secondary", onclick: () => close(false) }, "Cancel"),
            el("button", { class: "danger", id: "confirm-ok", onclick: () => close(true) }, okLabel))));
      document.body.append(overlay);
      overlay.querySelector("#confirm-ok").focus();
    });
  }

  function statusBadge(status) {
    return el("span", { class: "badge status-" + status }, status);
  }

  return {
    request, getJSON, post, ctrl, el, fill, fmtDuration, fmtTime, fmtBytes, jobUrl, httpUrl,
    urlLink, nav, flash, poll, confirmAction, statusBadge, writeHeaders,
  };
})();
