// runchain report: the data (#runchain-data, see report/data.py), state and helpers.
// One of the page's scripts: report/page.py joins them in order inside one function, so
// they share its names. Every string from a run reaches the DOM through textContent or
// setAttribute, never as HTML.
const D = JSON.parse(document.getElementById("runchain-data").textContent);
const runs = D.runs, byId = new Map(runs.map((r, i) => [r.id, i]));
const kids = runs.map(() => []);
runs.forEach((r, i) => { if (r.parent != null && byId.has(r.parent)) kids[byId.get(r.parent)].push(i); });
const state = {
  leaf: D.leaves[0] ?? D.allLeaves[0] ?? (runs[0] && runs[0].id),
  metrics: D.shown.slice(), log: false, smooth: 0, x: null, xAxis: "global", search: "", collapsed: new Set(), compare: [],
  y: {},  // metric -> [min, max] its chart's y range; null bounds are auto
  follow: false,  // --watch: chart the newest leaf's chain at each reload
  root: null, branchMetric: D.shown[0] ?? D.metrics[0] ?? null,
};
const api = window.runchain = {data: D, state, charts: [], branches: null, readyAt: null,
  select: id => pick(id), setSmoothing,
  setLog, setMetric, resetZoom, chainData, compare: ids => compare(ids), show: ms => { state.metrics = ms.slice(); renderCharts(); },
  hoverAt: (i, x) => hoverAt(i, x), setYRange: (i, lo, hi) => setYRange(state.metrics[i], lo, hi),
  setFollow: on => setFollow(on), setXAxis: name => setXAxis(name),
  cutsOf: i => api.charts[i] ? api.charts[i].cuts : null};

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
function niceStep(rough) {  // the round step (1, 2 or 5 times a power of ten) nearest above rough
  const p = Math.pow(10, Math.floor(Math.log10(Math.max(rough, 1e-9))));
  return [1, 2, 5, 10].map(m => m * p).find(s => s >= rough) ?? 10 * p;
}
const steps = v => Math.round(v).toLocaleString("en-US");  // a step with thousands separators
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
function nearestSeries(u, i) {  // the series drawn nearest the cursor at data index i, or -1
  let best = -1, dist = Infinity;
  for (let s = 1; s < u.data.length; s++) {
    const v = u.data[s][i];
    if (v == null) continue;
    const dy = Math.abs(u.valToPos(v, "y") - u.cursor.top);
    if (dy < dist) { dist = dy; best = s; }
  }
  return best;
}
function placeBeside(box, u) {  // a shown hover card beside the cursor, toward the chart's middle
  const o = u.over.getBoundingClientRect(), p = box.offsetParent.getBoundingClientRect();
  const x = o.left - p.left + u.cursor.left, y = o.top - p.top + u.cursor.top;
  box.style.left = Math.max(0, u.cursor.left > o.width / 2 ? x - box.offsetWidth - 14 : x + 14) + "px";
  box.style.top = Math.max(0, u.cursor.top > o.height / 2 ? y - box.offsetHeight - 14 : y + 14) + "px";
}

// -- chains and their data -----------------------------------------------------------------
function chainOf(id) {  // root -> id: [{run, cut, tl}], cut the last local step kept (null:
  // all), tl the run's timeline the chain keeps: null its rows as they stand, else one a
  // rewind or resume in place abandoned that the next run branched from (r.timelines)
  const out = [];
  let i = byId.get(id), cut = null, tl = null;
  while (i != null) {
    out.push({run: i, cut, tl});
    cut = runs[i].parentStep;
    tl = runs[i].parentTimeline ?? null;
    i = runs[i].parent != null ? byId.get(runs[i].parent) : null;
  }
  return out.reverse();
}
const track = (ri, tl) => tl == null ? runs[ri] : runs[ri].timelines[tl];  // {pieces, series}
function keptTracks(ri, cut, tl) {  // [[track, last step kept]] of run ri in a chain: timeline
  // tl holds the rows as they stand below its sharedBelow, so those come from the run's own
  if (tl == null) return [[null, cut]];
  return [[null, Math.min(cut, runs[ri].timelines[tl].sharedBelow - 1)], [tl, cut]];
}
function extent(segs) {
  const first = runs[segs[0].run], last = segs[segs.length - 1], r = runs[last.run];
  const hi = r.offset + (last.cut ?? r.lastStep ?? 0);
  const lo = first.offset + first.firstStep;
  return [lo, Math.max(hi, lo + 1)];
}
const pieceCache = new Map(), chainCache = new Map();
function piece(ri, pi, mi, tl = null) {
  const key = ri + ":" + tl + ":" + pi + ":" + mi;
  if (!pieceCache.has(key)) {
    const t = track(ri, tl), e = t.series[pi] && t.series[pi][mi];
    pieceCache.set(key, e ? [decode(e[0], Int32Array), decode(e[1], Float64Array)] : null);
  }
  return pieceCache.get(key);
}
function chainData(id, metric, axis = "global") {  // {x: global steps, ax: x on axis (page_xaxis.js),
  // y, run: run index per point, tl: its timeline (chainOf), seg: its segment, segs, ends:
  // each segment's first and last x on axis, sorted: ax never goes back}
  const key = id + "\u0000" + metric + "\u0000" + axis;
  if (chainCache.has(key)) return chainCache.get(key);
  const mi = D.metrics.indexOf(metric), segs = chainOf(id), {at, ends, kept} = axisOf(segs, axis);
  const x = [], ax = [], y = [], run = [], tls = [], seg = [];
  for (const p of mi < 0 ? [] : kept) {
    const r = runs[p.ri], q = piece(p.ri, p.pi, mi, p.t);
    if (!q) continue;
    for (let k = 0; k < q[0].length; k++) {
      x.push(r.offset + q[0][k]); ax.push(at(p, q[0][k])); y.push(q[1][k]); run.push(p.ri); tls.push(p.t); seg.push(p.k);
    }
  }
  const out = {x, ax, y, run, tl: tls, seg, segs, ends, sorted: isSorted(ax)};
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
const decade = e => Number("1e" + Math.max(-300, Math.min(300, e)));  // exactly 10**e
function yRange(u, min, max) {
  if (u.scales.y.distr === 3) {  // log: whole decades, so its ticks (logSplits) are powers of ten
    if (!(min > 0) || !(max > 0)) return [1, 10];  // nothing drawable in view: still a log range
    const lo = decade(Math.floor(Math.log10(min))), hi = decade(Math.ceil(Math.log10(max)));
    return [lo, hi > lo ? hi : lo * 10];
  }
  if (min == null || max == null) return [0, 1];
  if (min === max) { const p = Math.abs(min) * 0.05 || 0.5; return [min - p, max + p]; }
  const pad = (max / 2 - min / 2) * 0.1;
  return [min - pad, max + pad];
}
// a y axis's labels, values divided by f (factor); uPlot passes null for a tick it leaves
// unlabelled (a log axis with no room for every decade), which stays blank, never "0"
const yLabels = f => (u, vs) => vs.map(v => v == null ? "" : short(v * f));
function logSplits(u, axis, min, max) {  // a log axis's ticks: powers of ten, at most 8 labels
  const a = Math.ceil(Math.log10(min) - 1e-9), b = Math.floor(Math.log10(max) + 1e-9);
  if (!(min > 0) || !(b >= a)) return [];
  const every = Math.ceil((b - a + 1) / 8), out = [];
  for (let e = a; e <= b; e += every) out.push(decade(e));
  return out;
}
function logNote(ys) {  // on log y, what a chart leaves out (its values <= 0), or null
  let left = 0;
  for (const v of ys) if (v != null && v <= 0) left++;
  return state.log && left ? el("span", {class: "meta log-note"},
    `log y: ${left} value${left === 1 ? "" : "s"} \u2264 0 left out`) : null;
}
function headNote(body, ys) {  // logNote in the head of the card holding body
  const head = body.parentNode.querySelector(".card-head"), note = logNote(ys);
  if (note) head.insertBefore(note, head.children[1]);
}
// -- several chains on one chart (branches, compare) ---------------------------------------
// 20 colours that read apart on white; past 20 chains the branches chart draws every chain
// grey but the chosen one, and hovering a line brings it forward (uPlot's focus).
const CHAIN_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
  "#17becf", "#bcbd22", "#7f7f7f", "#000075", "#800000", "#469990", "#f032e6", "#9a6324",
  "#808000", "#42d4f4", "#911eb4", "#3cb44b", "#ff6f61"];
const SHARED = "#444";
function overlaySeries(leaves, metric, axis = "global") {
  // Each chain's own rows (kept by no other chain of the root) as its series; rows several
  // chains keep, one series per run, drawn once in SHARED.
  // A run's rows in a timeline a rewind abandoned are other rows past its sharedBelow:
  // shared only within that timeline. Points are keyed by global step, drawn at x on axis;
  // own[k][2] and shared xy[2]: each point's run (byRun).
  const chains = leaves.map(l => chainData(l, metric, axis));
  const keeps = chains.map(c => new Map(c.segs.flatMap(s => keptTracks(s.run, s.cut, s.tl)
    .map(([t, upTo]) => [s.run + "/" + t, upTo]))));
  const kept = (t, step) => keeps.reduce((n, m) => n + (m.has(t) && (m.get(t) == null || step <= m.get(t)) ? 1 : 0), 0);
  const own = chains.map(() => [[], [], []]), shared = new Map(), done = new Set();  // shared: track -> {ri, abandoned, xy: [[x], [y], [run]]}
  chains.forEach((c, k) => {
    for (let i = 0; i < c.x.length; i++) {
      const ri = c.run[i], t = ri + "/" + c.tl[i], key = t + ":" + c.x[i];
      if (kept(t, c.x[i] - runs[ri].offset) < 2) { own[k][0].push(c.ax[i]); own[k][1].push(c.y[i]); own[k][2].push(ri); continue; }
      if (done.has(key)) continue;  // drawn once
      done.add(key);
      if (!shared.has(t)) shared.set(t, {ri, abandoned: c.tl[i] != null, xy: [[], [], []]});
      shared.get(t).xy[0].push(c.ax[i]); shared.get(t).xy[1].push(c.y[i]); shared.get(t).xy[2].push(ri);
    }
  });
  return {chains, own, shared};
}
// runchain report --watch: read the file again after D.reload seconds; the view lives in the URL
if (D.reload) setTimeout(() => location.reload(), D.reload * 1000);
