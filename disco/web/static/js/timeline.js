// The task timeline of a job: one bar per task attempt on a time axis, grouped by node
// (overlapping attempts of a node get their own lanes); bars are coloured by stage,
// failed attempts are red and marked with a cross, killed ones grey and hatched.
"use strict";
const Timeline = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const PALETTE = ["#4c7edb", "#39a0a0", "#8e6bd1", "#d08a2e", "#5b9b3d", "#c05c9a", "#6d7b93"];
  const LANE = 14, GAP = 3, LABEL = 110, AXIS = 22, GROUP_GAP = 8;

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function lanesOf(attempts, now) {
    const lanes = [];
    for (const a of [...attempts].sort((x, y) => x.start - y.start)) {
      const end = a.end ?? now;
      let lane = lanes.findIndex((laneEnd) => laneEnd <= a.start);
      if (lane < 0) { lane = lanes.length; lanes.push(0); }
      lanes[lane] = end;
      a._lane = lane;
    }
    return lanes.length;
  }

  function ticks(span) {
    const steps = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200];
    const step = steps.find((s) => span / s <= 8) || 3600 * Math.ceil(span / 8 / 3600);
    const out = [];
    for (let t = 0; t <= span + 1e-9; t += step) out.push(t);
    return { step, out };
  }

  const label = (t, step) => (step < 1 ? t.toFixed(1) + " s" : t < 120 ? Math.round(t) + " s" : (t / 60).toFixed(step < 60 ? 1 : 0) + " min");

  function render(container, data, jobStart, stageOrder) {
    const attempts = data.attempts || [];
    if (!attempts.length) {
      Disco.fill(container, Object.assign(document.createElement("div"), { className: "empty", textContent: "No task has started yet." }));
      return;
    }
    const now = data.now;
    const t0 = Math.min(jobStart || Infinity, ...attempts.map((a) => a.start));
    const t1 = Math.max(...attempts.map((a) => a.end ?? now), t0 + 0.2);
    const span = t1 - t0;
    const width = Math.max(600, container.clientWidth || 900);
    const plotW = width - LABEL - 10;
    const x = (t) => LABEL + (plotW * (t - t0)) / span;
    const stages = [...new Set([...(stageOrder || []), ...attempts.map((a) => a.stage)])];
    const colour = (stage) => PALETTE[stages.indexOf(stage) % PALETTE.length];

    const byNode = new Map();
    for (const a of attempts) {
      if (!byNode.has(a.host)) byNode.set(a.host, []);
      byNode.get(a.host).push(a);
    }
    const nodes = [...byNode.keys()].sort();
    let y = AXIS;
    const groups = nodes.map((host) => {
      const list = byNode.get(host);
      const lanes = lanesOf(list, now);
      const g = { host, list, y, height: lanes * (LANE + GAP) };
      y += g.height + GROUP_GAP;
      return g;
    });
    const height = y + 4;
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, height, role: "img", "aria-label": "task timeline" });
    const defs = svg("defs");
    const hatch = svg("pattern", { id: "killed-hatch", width: 6, height: 6, patternUnits: "userSpaceOnUse", patternTransform: "rotate(45)" });
    hatch.append(svg("rect", { width: 6, height: 6, fill: "#c9ced8" }), svg("line", { x1: 0, y1: 0, x2: 0, y2: 6, stroke: "#9aa1ae", "stroke-width": 2 }));
    defs.append(hatch);
    root.append(defs);

    const { step, out } = ticks(span);
    for (const t of out) {
      const xx = x(t0 + t);
      root.append(svg("line", { x1: xx, x2: xx, y1: AXIS - 4, y2: height, stroke: "#e7e9ee" }));
      const anchor = xx > width - 30 ? "end" : "middle";
      root.append(svg("text", { x: xx, y: 12, "font-size": 11, fill: "#6b7385", "text-anchor": anchor }, label(t, step)));
    }
    for (const g of groups) {
      root.append(svg("text", { x: 4, y: g.y + LANE - 3, "font-size": 12, fill: "#1d2330", class: "tl-node" }, g.host));
      root.append(svg("line", { x1: LABEL, x2: width, y1: g.y + g.height + GROUP_GAP / 2 - 1, y2: g.y + g.height + GROUP_GAP / 2 - 1, stroke: "#eef0f3" }));
      for (const a of g.list) {
        const end = a.end ?? now;
        const bx = x(a.start), bw = Math.max(2, x(end) - x(a.start));
        const by = g.y + a._lane * (LANE + GAP);
        const fill = a.outcome === "failed" ? "#d2434b" : a.outcome === "killed" ? "url(#killed-hatch)" : colour(a.stage);
        const bar = svg("rect", {
          x: bx, y: by, width: bw, height: LANE, rx: 2, fill,
          opacity: a.outcome === "running" ? 0.65 : 1,
          class: `tl-bar tl-${a.outcome}`,
          "data-stage": a.stage, "data-task": a.taskid, "data-attempt": a.attempt, "data-host": a.host,
        });
        if (a.outcome === "running") bar.setAttribute("stroke", colour(a.stage));
        const dur = (end - a.start).toFixed(2);
        bar.append(svg("title", {}, `${a.stage}:${a.taskid} attempt ${a.attempt} on ${a.host}\n${a.outcome}, ${dur} s` + (a.reason ? `\n${a.reason}` : "")));
        root.append(bar);
        if (a.outcome === "failed") {
          root.append(svg("text", { x: bx + bw + 2, y: by + LANE - 3, "font-size": 12, fill: "#d2434b", "font-weight": 700, class: "tl-failed-mark" }, "✗"));
        }
      }
    }
    const legend = document.createElement("div");
    legend.className = "legend";
    const item = (bg, text) => {
      const span = document.createElement("span");
      span.innerHTML = `<span class="sw" style="background:${bg}"></span>`;
      span.append(text);
      return span;
    };
    legend.append(...stages.map((s) => item(colour(s), s)), item("#d2434b", "failed ✗"),
      item("repeating-linear-gradient(45deg,#c9ced8 0 3px,#9aa1ae 3px 5px)", "killed"));
    Disco.fill(container, root, legend);
  }

  return { render };
})();
