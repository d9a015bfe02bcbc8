// runchain report: the page's script. Data: the JSON in #runchain-data (see report/data.py).
// Every string from a run reaches the DOM through textContent or setAttribute, never as HTML.
"use strict";
(() => {
const D = JSON.parse(document.getElementById("runchain-data").textContent);
const runs = D.runs, byId = new Map(runs.map((r, i) => [r.id, i]));
const kids = runs.map(() => []);
runs.forEach((r, i) => { if (r.parent != null && byId.has(r.parent)) kids[byId.get(r.parent)].push(i); });
const state = {
  leaf: D.leaves[0] ?? D.allLeaves[0] ?? (runs[0] && runs[0].id),
  metrics: D.shown.slice(), log: false, smooth: 0, x: null,
  root: null, branchMetric: D.shown[0] ?? D.metrics[0] ?? null,
};
const api = window.runchain = {data: D, state, charts: [], branches: null, readyAt: null, select, setSmoothing,
  setLog, setMetric, resetZoom, chainData, show: ms => { state.metrics = ms.slice(); renderCharts(); }};

// -- helpers -------------------------------------------------------------------------------
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v != null) e.setAttribute(k, v);
  }
  for (const c of children) if (c != null) e.append(c);  // strings become text nodes
  return e;
}
function svg(tag, attrs) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  return e;
}
const num = v => v == null ? "\u2013" : String(v);  // shortest text that reads back the same double
const short = v => Math.abs(v) >= 1e5 || (v !== 0 && Math.abs(v) < 1e-3) ? v.toExponential(2) : String(+v.toPrecision(4));
function decode(b64, T) {
  const s = atob(b64), b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return new T(b.buffer);
}
function label(i) { const r = runs[i]; return r.name ? `${r.id} (${r.name})` : r.id; }
const tip = el("div", {class: "tip", role: "tooltip"});
document.body.append(tip);
function showTip(lines, x, y) {
  tip.textContent = lines.join("\n");
  tip.style.display = "block";
  const w = tip.offsetWidth, h = tip.offsetHeight;
  tip.style.left = Math.max(4, Math.min(x + 14, innerWidth - w - 4)) + "px";
  tip.style.top = Math.max(4, Math.min(y + 14, innerHeight - h - 4)) + "px";
}
const hideTip = () => { tip.style.display = "none"; };

// -- chains and their data -----------------------------------------------------------------
function chainOf(id) {  // root -> id: [{run, cut}], cut the last local step kept (null: all)
  const out = [];
  let i = byId.get(id), cut = null;
  while (i != null) {
    out.push({run: i, cut});
    cut = runs[i].parentStep;
    i = runs[i].parent != null ? byId.get(runs[i].parent) : null;
  }
  return out.reverse();
}
function extent(segs) {
  const first = runs[segs[0].run], last = segs[segs.length - 1], r = runs[last.run];
  const hi = r.offset + (last.cut ?? r.lastStep ?? 0);
  const lo = first.offset + first.firstStep;
  return [lo, Math.max(hi, lo + 1)];
}
const pieceCache = new Map(), chainCache = new Map();
function piece(ri, pi, mi) {
  const key = ri + ":" + pi + ":" + mi;
  if (!pieceCache.has(key)) {
    const e = runs[ri].series[pi] && runs[ri].series[pi][mi];
    pieceCache.set(key, e ? [decode(e[0], Int32Array), decode(e[1], Float64Array)] : null);
  }
  return pieceCache.get(key);
}
function chainData(id, metric) {  // {x: global steps, y, run: run index per point, segs}
  const key = id + "\u0000" + metric;
  if (chainCache.has(key)) return chainCache.get(key);
  const mi = D.metrics.indexOf(metric), segs = chainOf(id), x = [], y = [], run = [];
  for (const {run: ri, cut} of segs) {
    const r = runs[ri];
    r.pieces.forEach(([, last], pi) => {
      if (mi < 0 || (cut != null && last > cut)) return;
      const p = piece(ri, pi, mi);
      if (!p) return;
      for (let k = 0; k < p[0].length; k++) { x.push(r.offset + p[0][k]); y.push(p[1][k]); run.push(ri); }
    });
  }
  const out = {x, y, run, segs};
  chainCache.set(key, out);
  return out;
}
function ema(y, w) {  // W&B's smoothing: exponential moving average, debiased at the start
  const out = new Array(y.length);
  let last = 0, n = 0;
  for (let i = 0; i < y.length; i++) {
    if (y[i] == null) { out[i] = null; continue; }
    last = last * w + (1 - w) * y[i];
    n++;
    out[i] = last / (1 - Math.pow(w, n));
  }
  return out;
}
function factor(ys) {  // divide values this huge (up to +-1e308) so scale arithmetic stays finite
  let big = 0;
  for (const v of ys) if (v != null && Math.abs(v) > big) big = Math.abs(v);
  return big < 1e100 ? 1 : Math.pow(10, Math.floor(Math.log10(big)));
}
function yRange(u, min, max) {
  if (min == null || max == null) return [0, 1];
  if (u.scales.y.distr === 3) return [min / 1.5, max * 1.5];
  if (min === max) { const p = Math.abs(min) * 0.05 || 0.5; return [min - p, max + p]; }
  const pad = (max / 2 - min / 2) * 0.1;
  return [min - pad, max + pad];
}

// -- page skeleton -------------------------------------------------------------------------
const nChains = D.allLeaves.length;
document.title = "runchain report: " + D.where;
const header = el("header", null, el("h1", null, "runchain report"),
  el("p", {class: "meta"}, `${runs.length} runs, ${D.roots.length} root(s), ${nChains} chain(s), ` +
    `${D.metrics.length} metric(s), read from `, el("code", null, D.where), `; runchain ${D.version}`),
  D.notes.length ? el("ul", {class: "meta"}, ...D.notes.map(n => el("li", null, n))) : null,
  el("nav", null, ...["tree", "chains", "branches", "runs"].map(s => el("a", {href: "#" + s}, s))));
const metricList = el("datalist", {id: "rc-metrics"}, ...D.metrics.map(m => el("option", {value: m})));
const treeBox = el("div", {class: "treemap"});
const chainPick = el("select", {class: "chain-pick", onchange: e => select(e.target.value)});
const logBox = el("input", {type: "checkbox", class: "logy", onchange: e => setLog(e.target.checked)});
const smoothOut = el("output", null, "0");
const smoothIn = el("input", {type: "range", min: 0, max: 0.99, step: 0.01, value: 0, class: "smooth",
  oninput: e => setSmoothing(+e.target.value)});
const addIn = el("input", {list: "rc-metrics", placeholder: "search metrics\u2026", class: "add-metric",
  onchange: e => { if (D.metrics.includes(e.target.value)) { state.metrics.push(e.target.value); e.target.value = ""; renderCharts(); } }});
const pathLine = el("p", {class: "meta chain-path"}), legend = el("div", {class: "legend"});
const grid = el("div", {class: "grid"});
const rootPick = el("select", {class: "root-pick", onchange: e => { state.root = e.target.value; renderBranches(); }},
  ...D.roots.map(r => el("option", {value: r}, label(byId.get(r)))));
const branchIn = el("input", {list: "rc-metrics", class: "branch-metric", value: state.branchMetric ?? "",
  onchange: e => { if (D.metrics.includes(e.target.value)) { state.branchMetric = e.target.value; renderBranches(); } }});
const branchBox = el("div", {class: "chart branches"}), branchLegend = el("div", {class: "legend"});
document.body.append(header, metricList,
  el("h2", {id: "tree"}, "Tree of runs on the global step axis"),
  el("p", {class: "hint"}, "Each bar is a run from its first to its last global step; ticks are " +
    "checkpoints; the faint part is what no chain keeps; \u2715 marks a crashed or failed run, " +
    "\u25b6 a running one. Hover for details; click a run to chart the chain that ends there."),
  treeBox,
  el("h2", {id: "chains"}, "Chain"),
  el("div", {class: "toolbar"}, el("label", null, "chain to ", chainPick),
    el("label", null, logBox, " log y"),
    el("label", null, "smoothing ", smoothIn, " ", smoothOut),
    el("label", null, "add chart ", addIn),
    el("button", {type: "button", onclick: () => resetZoom()}, "reset zoom")),
  el("p", {class: "hint"}, "Drag across a chart to zoom every chart; double-click to reset. " +
    "Dashed lines are resume points; each run keeps its colour."),
  pathLine, legend, grid,
  el("h2", {id: "branches"}, "Branches"),
  el("p", {class: "hint"}, "Every chain from a root, overlaid and coloured by its leaf; dots mark " +
    "fork points, where a run started from another's checkpoint."),
  el("div", {class: "toolbar"}, el("label", null, "root ", rootPick), el("label", null, "metric ", branchIn)),
  branchBox, branchLegend,
  el("h2", {id: "runs"}, "Runs"), runsTable());
if (!D.metrics.length) grid.append(el("p", {class: "meta"}, "No metrics logged."));

// -- tree map ------------------------------------------------------------------------------
function renderTree() {
  const n = runs.length, lane = n <= 40 ? 18 : n <= 100 ? 9 : 6, labels = lane >= 9;
  const W = Math.max(300, treeBox.clientWidth), room = labels ? Math.min(260, W * 0.3) : 12;
  const maxG = Math.max(1, ...runs.map(r => r.offset + (r.lastStep ?? 0) + 1));
  const X = g => 6 + g / maxG * (W - room - 12), H = n * lane + 24;
  const chain = new Map(chainOf(state.leaf).map(s => [s.run, s.cut]));
  const root = svg("svg", {width: W, height: H, class: "tree-svg"});
  const axis = svg("g", {class: "axis"});
  for (let k = 0; k <= 5; k++) {
    const g = Math.round(maxG * k / 5), t = svg("text", {x: X(g), y: H - 4, "text-anchor": k ? (k === 5 ? "end" : "middle") : "start"});
    t.textContent = String(g);
    axis.append(svg("line", {x1: X(g), x2: X(g), y1: 0, y2: H - 16}), t);
  }
  root.append(axis);
  runs.forEach((r, i) => {
    const y = i * lane, h = lane * 0.7, inChain = chain.has(i), g = svg("g", {"data-run": r.id});
    const start = r.offset + r.firstStep, end = r.offset + (r.lastStep ?? r.firstStep) + 1;
    const kept = inChain && chain.get(i) != null ? chain.get(i) : r.kept;
    g.append(svg("rect", {x: X(start), y: y + (lane - h) / 2, width: Math.max(1, X(end) - X(start)), height: h,
      fill: r.color, opacity: 0.25}));
    if (r.lastStep != null) g.append(svg("rect", {x: X(start), y: y + (lane - h) / 2,
      width: Math.max(1, X(r.offset + (inChain && chain.get(i) == null ? r.lastStep : kept) + 1) - X(start)),
      height: h, fill: r.color, opacity: inChain ? 1 : 0.55, class: inChain ? "in-chain" : ""}));
    for (const c of r.checkpoints) g.append(svg("line", {x1: X(r.offset + c + 0.5), x2: X(r.offset + c + 0.5),
      y1: y + 1, y2: y + lane - 1, class: "tick"}));
    if (r.parent != null && byId.has(r.parent)) {
      const p = byId.get(r.parent), cx = X(runs[p].offset + r.parentStep + 0.5);
      g.append(svg("path", {d: `M${cx},${p * lane + lane / 2}V${y + lane / 2}H${X(start)}`,
        stroke: r.color, fill: "none", class: "link"}));
    }
    const mark = {crashed: "\u2715", failed: "\u2715", running: "\u25b6"}[r.state];
    if (mark || labels) {
      const t = svg("text", {x: X(end) + 3, y: y + lane / 2, "dominant-baseline": "central",
        class: mark ? "state-" + r.state : ""});
      t.textContent = (mark ? mark + " " : "") + (labels ? label(i) : "");
      g.append(t);
    }
    root.append(g);
  });
  root.addEventListener("mousemove", e => {
    const i = Math.floor((e.clientY - root.getBoundingClientRect().top) / lane);
    if (i < 0 || i >= n) return hideTip();
    const r = runs[i], lines = [`run ${r.id}`, `name: ${r.name || "\u2013"}`, `state: ${r.state}`,
      r.parent != null ? `started from ${r.parent} at its step ${r.parentStep}` : "root",
      r.lastStep == null ? "no rows logged" : `local steps ${r.firstStep}\u2013${r.lastStep}, global ${r.offset + r.firstStep}\u2013${r.offset + r.lastStep}`,
      `checkpoints at ${r.checkpoints.join(", ") || "\u2013"}`];
    if (r.kept != null && r.kept !== r.lastStep) lines.push(`chains to leaves keep steps ${r.firstStep}\u2013${r.kept}`);
    for (const [k, v] of Object.entries(differing(i))) lines.push(`${k} = ${v}`);
    showTip(lines, e.clientX, e.clientY);
  });
  root.addEventListener("mouseleave", hideTip);
  root.addEventListener("click", e => {
    const i = Math.floor((e.clientY - root.getBoundingClientRect().top) / lane);
    if (i >= 0 && i < n) select(runs[i].id);
  });
  treeBox.replaceChildren(root);
}
function differing(i) {  // config keys whose value is not the same in every run
  const out = {}, cfg = runs[i].config;
  for (const k of Object.keys(cfg)) if (runs.some(r => r.config[k] !== cfg[k])) out[k] = cfg[k];
  return out;
}

// -- chain charts --------------------------------------------------------------------------
let syncing = false;
function shareZoom(u, key) {
  if (key !== "x" || syncing) return;
  syncing = true;
  state.x = [u.scales.x.min, u.scales.x.max];
  for (const c of api.charts) if (c && c !== u) c.setScale("x", {min: state.x[0], max: state.x[1]});
  if (api.branches && api.branches !== u) api.branches.setScale("x", {min: state.x[0], max: state.x[1]});
  syncing = false;
}
function resetZoom() {
  state.x = null;
  const [lo, hi] = extent(chainOf(state.leaf));
  syncing = true;
  for (const c of api.charts) if (c) c.setScale("x", {min: lo, max: hi});
  syncing = false;
  if (api.branches) api.branches.setScale("x", api.branches.full);
}
function stroke(segs, alpha) {  // one line, each run's stretch in its colour
  return u => {
    const {left, width} = u.bbox, ctx = u.ctx;
    if (!(width > 0)) return runs[segs[0].run].color;
    const g = ctx.createLinearGradient(left, 0, left + width, 0);
    const at = v => Math.min(1, Math.max(0, (u.valToPos(v, "x", true) - left) / width));
    segs.forEach((s, k) => {  // each run's colour from the cut before it to its own cut
      const r = runs[s.run], prev = segs[k - 1], c = r.color + alpha;
      g.addColorStop(at(prev ? runs[prev.run].offset + prev.cut + 0.5 : -Infinity), c);
      g.addColorStop(at(s.cut != null ? r.offset + s.cut + 0.5 : Infinity), c);
    });
    return g;
  };
}
function chartSize(box) {
  const W = Math.max(280, grid.clientWidth), cols = W >= 900 ? 2 : 1;
  return {width: Math.floor(W / cols) - 18, height: 220};
}
function makeChart(metric, index) {
  const d = chainData(state.leaf, metric), segs = d.segs;
  const raw = d.y.map(v => state.log && v <= 0 ? null : v), f = state.log ? 1 : factor(raw);
  const drawnRaw = raw.map(v => v == null ? null : v / f);
  const smooth = ema(raw, state.smooth).map(v => v == null ? null : v / f);
  const tipBox = el("div", {class: "chart-tip"});
  const pick = el("input", {list: "rc-metrics", class: "metric-pick", value: metric, "aria-label": "metric",
    onchange: e => setMetric(index, e.target.value)});
  const body = el("div", {class: "plot"});
  const card = el("div", {class: "card"}, el("div", {class: "card-head"}, pick,
    el("button", {type: "button", class: "remove", title: "remove this chart",
      onclick: () => { state.metrics.splice(index, 1); renderCharts(); }}, "\u00d7")), body, tipBox);
  grid.append(card);
  if (!d.x.length) { body.append(el("p", {class: "meta empty"}, "not logged in this chain")); return null; }
  const [lo, hi] = state.x ?? extent(segs);
  const u = new uPlot({
    ...chartSize(), legend: {show: false},
    scales: {x: {time: false, auto: false, min: lo, max: hi, range: (u, a, b) => [a, b]},
             y: {distr: state.log ? 3 : 1, range: yRange}},
    axes: [{size: 30}, {size: 60, values: (u, vs) => vs.map(v => short(v * f))}],
    series: [{}, {label: "raw", stroke: stroke(segs, state.smooth > 0 ? "40" : ""), width: 1, spanGaps: true},
             {label: "smoothed", stroke: stroke(segs, ""), width: 1.5, spanGaps: true, show: state.smooth > 0}],
    cursor: {sync: {key: "rc-chain"}, drag: {x: true, y: false}, points: {show: false},
             bind: {dblclick: () => () => { resetZoom(); return null; }}},
    hooks: {
      setScale: [shareZoom],
      draw: [u => {
        const ctx = u.ctx, {top, height} = u.bbox;
        ctx.save(); ctx.setLineDash([5, 4]); ctx.strokeStyle = "#555"; ctx.lineWidth = 1;
        for (const s of segs.slice(0, -1)) {  // right after each cut
          const x = Math.round(u.valToPos(runs[s.run].offset + s.cut + 1, "x", true)) + 0.5;
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
          ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
        }
        ctx.restore();
        markReady();
      }],
      setCursor: [u => {
        const i = u.cursor.idx;
        if (i == null || u.cursor.left < 0) { tipBox.style.display = "none"; return; }
        const r = runs[d.run[i]];
        tipBox.textContent = [`${metric}`, `run ${label(d.run[i])}`,
          `local step ${d.x[i] - r.offset}`, `global step ${d.x[i]}`, `value ${num(d.y[i])}`]
          .concat(state.smooth > 0 ? [`smoothed ${num(smooth[i] == null ? null : smooth[i] * f)}`] : []).join("\n");
        tipBox.style.display = "block";
        const x = u.cursor.left + u.bbox.left / devicePixelRatio + body.offsetLeft;
        const y = u.cursor.top + u.bbox.top / devicePixelRatio + body.offsetTop;
        tipBox.style.left = (x > u.width / 2 ? x - tipBox.offsetWidth - 14 : x + 14) + "px";
        tipBox.style.top = (y > u.height / 2 ? y - tipBox.offsetHeight - 14 : y + 14) + "px";
      }],
    },
  }, [d.x, drawnRaw, smooth], body);
  u.metric = metric; u.factor = f; u.chainRuns = d.run;
  return u;
}
function renderCharts() {
  for (const c of api.charts) if (c) c.destroy();
  grid.replaceChildren();
  api.charts = state.metrics.map(makeChart);  // null where the chain did not log the metric
  renderLegend();
}
function renderLegend() {
  const segs = chainOf(state.leaf);
  pathLine.textContent = segs.map(s => runs[s.run].id + (s.cut != null ? "@" + s.cut : "")).join(" \u2192 ");
  legend.replaceChildren(...segs.map(s => {
    const r = runs[s.run], last = s.cut ?? r.lastStep;
    return el("span", {class: "item", title: `run ${r.id}: local steps ${r.firstStep}\u2013${num(last)}`},
      el("span", {class: "swatch", style: `background:${r.color}`}), label(s.run),
      r.state !== "finished" ? el("em", null, " " + r.state) : null);
  }));
}
function select(id) {
  if (!byId.has(id)) return;
  state.leaf = id;
  state.x = null;
  if (![...chainPick.options].some(o => o.value === id)) chainPick.append(el("option", {value: id}, label(byId.get(id))));
  chainPick.value = id;
  renderTree(); renderCharts();
  const root = runs[chainOf(id)[0].run].id;
  if (state.root !== root) {  // after the charts: the first chart is what the page waits for
    state.root = root; rootPick.value = root;
    if (api.readyAt == null) setTimeout(renderBranches, 0); else renderBranches();
  }
}
function setMetric(i, metric) {
  if (!D.metrics.includes(metric)) return false;
  state.metrics[i] = metric; renderCharts();
  return true;
}
function setSmoothing(w) { state.smooth = w; smoothIn.value = w; smoothOut.textContent = w.toFixed(2); renderCharts(); }
function setLog(on) { state.log = on; logBox.checked = on; renderCharts(); }

// -- branches ------------------------------------------------------------------------------
function renderBranches() {
  if (api.branches) { api.branches.destroy(); api.branches = null; }
  branchBox.replaceChildren(); branchLegend.replaceChildren();
  const metric = state.branchMetric, root = state.root ?? D.roots[0];
  if (metric == null || root == null) return;
  const leaves = D.allLeaves.filter(l => runs[chainOf(l)[0].run].id === root);
  const colors = leaves.map((l, k) => ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b",
    "#e377c2", "#17becf", "#bcbd22", "#7f7f7f"][k % 10]);
  const chains = leaves.map(l => chainData(l, metric));
  const tables = chains.map(c => [c.x, c.y]).filter(t => t[0].length);
  const drawn = leaves.filter((l, k) => chains[k].x.length), colorOf = leaves.map((l, k) => colors[k]).filter((c, k) => chains[k].x.length);
  branchLegend.append(...drawn.map((l, k) => el("span", {class: "item", onclick: () => select(l)},
    el("span", {class: "swatch", style: `background:${colorOf[k]}`}), label(byId.get(l)))));
  if (!tables.length) { branchBox.append(el("p", {class: "meta empty"}, `${metric} not logged from this root`)); return; }
  const data = uPlot.join(tables);
  let f = 1, lo = Infinity, hi = -Infinity;
  for (const s of data.slice(1)) f = Math.max(f, factor(s));
  for (const x of data[0]) { if (x < lo) lo = x; if (x > hi) hi = x; }
  hi = Math.max(hi, lo + 1);
  const forks = [];  // [global step, value] where a child started from a run of this root
  for (const c of chains) c.segs.slice(0, -1).forEach(s => {  // the parent's row at each cut
    const at = runs[s.run].offset + s.cut, k = c.x.lastIndexOf(at);
    if (k >= 0) forks.push([at, c.y[k]]);
  });
  const btip = el("div", {class: "chart-tip"});
  const u = new uPlot({
    width: Math.max(280, branchBox.clientWidth) - 4, height: 320, legend: {show: false},
    scales: {x: {time: false, auto: false, min: lo, max: hi, range: (u, a, b) => [a, b]}, y: {range: yRange}},
    axes: [{size: 30}, {size: 60, values: (u, vs) => vs.map(v => short(v * f))}],
    series: [{}, ...drawn.map((l, k) => ({label: l, stroke: colorOf[k], width: 1.2, spanGaps: true}))],
    cursor: {drag: {x: true, y: false}, points: {show: false},
             bind: {dblclick: () => () => { u.setScale("x", u.full); return null; }}},
    hooks: {
      draw: [u => {
        const ctx = u.ctx; ctx.save(); ctx.fillStyle = "#000";
        for (const [x, y] of forks) {
          ctx.beginPath(); ctx.arc(u.valToPos(x, "x", true), u.valToPos(y / f, "y", true), 3 * devicePixelRatio, 0, 7); ctx.fill();
        }
        ctx.restore();
      }],
      setCursor: [u => {
        const i = u.cursor.idx;
        if (i == null || u.cursor.left < 0) { btip.style.display = "none"; return; }
        let best = -1, dist = Infinity;  // the chain drawn nearest the cursor names its leaf
        for (let s = 1; s < u.data.length; s++) {
          const v = u.data[s][i];
          if (v == null) continue;
          const dy = Math.abs(u.valToPos(v, "y") - u.cursor.top);
          if (dy < dist) { dist = dy; best = s; }
        }
        if (best < 0) { btip.style.display = "none"; return; }
        btip.textContent = [`chain to ${label(byId.get(drawn[best - 1]))}`, `global step ${u.data[0][i]}`,
          `${metric} ${num(u.data[best][i] * f)}`].join("\n");
        btip.style.display = "block";
        btip.style.left = (u.cursor.left + 70) + "px";
      }],
    },
  }, data.map((s, k) => k ? s.map(v => v == null ? null : v / f) : s), branchBox);
  branchBox.append(btip);
  u.full = {min: lo, max: hi}; u.leaves = drawn;
  api.branches = u;
}

// -- runs table ----------------------------------------------------------------------------
function runsTable() {
  const head = ["run", "name", "parent", "cut step", "local steps", "global steps", "state", "checkpoints",
                "differs"];
  const anyUrl = runs.some(r => r.url);
  if (anyUrl) head.push("W&B");
  const rows = runs.map((r, i) => {
    const span = r.lastStep == null ? "no rows" : `${r.firstStep}\u2013${r.lastStep}`;
    const glob = r.lastStep == null ? "no rows" : `${r.offset + r.firstStep}\u2013${r.offset + r.lastStep}`;
    const cells = [el("td", null, el("span", {class: "swatch", style: `background:${r.color}`}), el("code", null, r.id)),
      el("td", null, r.name), el("td", null, el("code", null, r.parent ?? "")), el("td", null, num(r.parentStep ?? null)),
      el("td", null, span), el("td", null, glob), el("td", {class: "state-" + r.state}, r.state),
      el("td", null, r.checkpoints.join(", ")),
      el("td", null, Object.entries(r.differs).map(([k, v]) => `${k}=${v}`).join(" "))];
    if (anyUrl) cells.push(el("td", null, r.url ? el("a", {href: r.url}, "open") : ""));
    return el("tr", {onclick: () => select(r.id)}, ...cells);
  });
  return el("div", {class: "table-wrap"},  // a narrow window scrolls the table, not the page
    el("table", null, el("thead", null, el("tr", null, ...head.map(h => el("th", null, h)))),
      el("tbody", null, ...rows)));
}

// -- start ---------------------------------------------------------------------------------
function markReady() {  // the first chart is drawn; data-ready lets a test wait without eval (CSP)
  if (api.readyAt != null) return;
  api.readyAt = performance.now();
  document.documentElement.dataset.ready = "1";
}

chainPick.append(...D.leaves.map(l => el("option", {value: l}, label(byId.get(l)))));
if (state.leaf != null) select(state.leaf);
else markReady();
if (!api.charts.some(c => c)) markReady();
let resizing = null;
addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => { renderTree(); renderCharts(); renderBranches(); }, 150);
});
})();
