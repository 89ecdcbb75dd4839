// Shared code of the Disco web UI pages: the one HTTP helper, DOM and format helpers,
// the navigation bar, polling and the action confirmation.
"use strict";

const Disco = (() => {
  // The master's optional shared secret (DISCO_AUTH_TOKEN, docs/security.md).  The page
  // asks for it when a request answers 401, keeps it in sessionStorage (gone with the tab)
  // and sends it in AUTH_HEADER on every request it makes.  This is the one place.
  const AUTH_HEADER = "X-Disco-Auth-Token";
  const TOKEN_KEY = "disco.authToken";

  function storedToken() {
    try { return sessionStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
  }

  function storeToken(token) {
    try {
      if (token) sessionStorage.setItem(TOKEN_KEY, token);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) { /* storage disabled: the token lives as long as the page */ }
    memoryToken = token || null;
    updateTokenLink();
  }

  let memoryToken = null;
  const currentToken = () => storedToken() || memoryToken;

  function authHeaders() {
    const token = currentToken();
    return token ? { [AUTH_HEADER]: token } : {};
  }

  // Kept for callers of the first version: the headers of a write are the auth headers.
  const writeHeaders = authHeaders;

  // One token dialog at a time: concurrent requests that got 401 wait for the same answer.
  let pendingAsk = null;
  let declined = false; // the user cancelled: background reads stop asking

  function askToken(wrong) {
    if (!pendingAsk) {
      pendingAsk = tokenDialog(wrong).then((token) => {
        pendingAsk = null;
        declined = token === null;
        if (token !== null) storeToken(token);
        else if (wrong) storeToken(null); // the master refused it: do not keep sending it
        return token;
      });
    }
    return pendingAsk;
  }

  // Resolves the token the user typed, or null when they cancel.
  function tokenDialog(wrong) {
    return new Promise((resolve) => {
      const input = el("input", {
        type: "password", id: "auth-token-input", autocomplete: "off", spellcheck: "false",
        placeholder: "DISCO_AUTH_TOKEN", "aria-label": "Auth token",
      });
      const close = (answer) => { overlay.remove(); resolve(answer); };
      const submit = (ev) => {
        ev.preventDefault();
        if (input.value) close(input.value);
        else input.focus();
      };
      const overlay = el("div", { class: "overlay", role: "dialog", "aria-modal": "true", "aria-labelledby": "auth-title" },
        el("form", { class: "dialog auth-dialog", id: "auth-dialog", onsubmit: submit },
          el("h2", { id: "auth-title" }, "Access token required"),
          el("p", {}, "This master requires its ", el("code", {}, "DISCO_AUTH_TOKEN"),
            ". Enter it to continue."),
          wrong ? el("p", { class: "auth-error", id: "auth-token-error", role: "alert" },
            "The master refused that token. Check the value and try again.") : null,
          input,
          el("p", { class: "muted small" },
            "Kept in this tab only (sessionStorage) and sent to this master in the ",
            el("code", {}, AUTH_HEADER), " header."),
          el("div", { class: "buttons" },
            el("button", { type: "button", class: "secondary", id: "auth-token-cancel", onclick: () => close(null) }, "Cancel"),
            el("button", { type: "submit", id: "auth-token-ok" }, "Continue"))));
      overlay.addEventListener("keydown", (ev) => { if (ev.key === "Escape") close(null); });
      document.body.append(overlay);
      input.focus();
    });
  }

  // The master's own 401 (a DDFS tag token's 401 does not name the header).
  const isAuthFailure = (status, text) => status === 401 && text.includes(AUTH_HEADER);

  function authError(method, path) {
    const err = new Error(`Not done: this master requires its DISCO_AUTH_TOKEN (${method} ${path})`);
    err.status = 401;
    return err;
  }

  // Every request of the pages goes through here (all to the master's own origin).
  // Returns the Response; throws an Error with the server's text on a non-2xx status.
  // A 401 of the auth check asks for the token and retries; cancelling throws.
  async function request(path, { method = "GET", body, headers = {}, raw = false, ask } = {}) {
    const write = method !== "GET" && method !== "HEAD";
    const mayAsk = ask === undefined ? write || !declined : ask;
    const payload = body === undefined ? undefined : raw ? body : JSON.stringify(body);
    for (;;) {
      const sent = currentToken();
      const opts = { method, headers: { ...headers, ...authHeaders() }, cache: "no-store" };
      if (payload !== undefined) {
        opts.body = payload;
        if (!raw) opts.headers["Content-Type"] = "application/json";
      }
      const resp = await fetch(path, opts);
      if (resp.ok) return resp;
      const text = await resp.text();
      if (isAuthFailure(resp.status, text)) {
        if (currentToken() !== sent) continue; // another request got a new token meanwhile
        if (!mayAsk) throw authError(method, path);
        if ((await askToken(Boolean(sent))) === null) throw authError(method, path);
        continue;
      }
      const err = new Error(`${method} ${path}: ${resp.status} ${text}`.trim());
      err.status = resp.status;
      throw err;
    }
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
      el("a", { href: "#", id: "forget-token", class: "token-link", hidden: true,
        title: "Forget the DISCO_AUTH_TOKEN this tab sends", onclick: forgetToken }, "Forget token"),
      el("span", { id: "version", class: "muted" }));
    document.body.prepend(bar);
    updateTokenLink();
    getJSON("/disco/version").then((v) => {
      document.getElementById("version").textContent = "master " + v;
    }).catch(() => {});
  }

  function updateTokenLink() {
    const link = document.getElementById("forget-token");
    if (link) link.hidden = !currentToken();
  }

  function forgetToken(ev) {
    if (ev) ev.preventDefault();
    storeToken(null);
    declined = false;
    flash("Token forgotten: this tab no longer sends it");
  }

  // Links to data on the master's own origin (results, blobs) are fetched with the token
  // and saved from a blob when a token is set: a plain navigation cannot send the header,
  // and with DISCO_AUTH_READS the data server would answer 401.  Links to other origins
  // (other nodes' data servers) stay plain links: a browser cannot send them the header
  // (no CORS); see docs/web-ui.md.
  async function downloadWithToken(link) {
    const url = new URL(link.href, location.href);
    const resp = await request(url.pathname + url.search);
    const blobUrl = URL.createObjectURL(await resp.blob());
    const name = link.getAttribute("download") || url.pathname.split("/").pop() || "download";
    const a = el("a", { href: blobUrl, download: name, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(blobUrl), 60_000);
  }

  document.addEventListener("click", (ev) => {
    const link = ev.target.closest && ev.target.closest("a.url[href], a.download[href]");
    if (!link || !currentToken() || ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.altKey) return;
    const url = new URL(link.href, location.href);
    if (url.origin !== location.origin || !/^\/(disco|ddfs)\//.test(url.pathname)) return;
    ev.preventDefault();
    downloadWithToken(link).catch((e) => flash(e.message, "error"));
  });

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
    urlLink, nav, flash, poll, confirmAction, statusBadge, writeHeaders, authHeaders,
    forgetToken, AUTH_HEADER,
  };
})();
