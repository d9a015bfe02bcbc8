// runchain report: the x axis of every chart (state.xAxis), as W&B offers them: the global
// step (the default), each run's local step, wall time, relative time (the hours since the
// chain's first row, summed run by run: the time between runs is left out), or a metric
// the chain logged on every row (epoch, tokens).
// One of the page's scripts: report/page.py joins them in order inside one function, so
// they share its names. Every string from a run reaches the DOM through textContent or
// setAttribute, never as HTML.
// The data holds each piece's rows by local step. A point's x on another axis is read at
// its local step: wall time from the piece's thinned _timestamp rows (r.times), a metric
// from its own thinned series, each interpolated between the rows kept, whose first and
// last are exact.
const AXES = {global: "global step", local: "local step", wall: "wall time", relative: "relative time"};
const axisName = a => AXES[a] ?? a;
const xPick = el("select", {class: "x-axis", "aria-label": "x axis", onchange: e => setXAxis(e.target.value)});
const xNote = el("span", {class: "meta x-note"});
function interp(p, s) {  // p: [steps, values], steps ascending: the value at step s, linear
  const [xs, ys] = p;
  let lo = 0, hi = xs.length - 1;
  if (s <= xs[0]) return ys[0];
  if (s >= xs[hi]) return ys[hi];
  while (hi - lo > 1) { const m = (lo + hi) >> 1; if (xs[m] <= s) lo = m; else hi = m; }
  return xs[lo] === s ? ys[lo] : ys[lo] + (ys[hi] - ys[lo]) * (s - xs[lo]) / (xs[hi] - xs[lo]);
}
function timePiece(ri, pi, tl) {  // a piece's [steps, wall times], or null
  const key = ri + ":" + tl + ":" + pi + ":t";
  if (!pieceCache.has(key)) {
    const e = (track(ri, tl).times || [])[pi];
    pieceCache.set(key, e ? [decode(e[0], Int32Array), decode(e[1], Float64Array)] : null);
  }
  return pieceCache.get(key);
}
function keptPieces(segs) {  // every piece a chain keeps, in order: {k: its segment, ri, t, pi, first, last}
  const out = [];
  segs.forEach(({run: ri, cut, tl}, k) => {
    for (const [t, upTo] of keptTracks(ri, cut, tl)) track(ri, t).pieces.forEach(([first, last], pi) => {
      if (upTo == null || last <= upTo) out.push({k, ri, t, pi, first, last});
    });
  });
  return out;
}
function axesOf(id) {  // the x axes the chain to id offers
  const kept = keptPieces(chainOf(id)), out = ["global", "local"];
  if (!kept.length) return out;
  if (kept.every(p => timePiece(p.ri, p.pi, p.t))) out.push("wall", "relative");
  return out.concat(D.metrics.filter((m, mi) =>
    kept.every(p => (track(p.ri, p.t).complete || [])[p.pi]?.includes(mi))));
}
function axisFor(ids) {  // the axis the charts of these chains use: state.xAxis where all offer it
  return ids.every(id => axesOf(id).includes(state.xAxis)) ? state.xAxis : "global";
}
function axisOf(segs, axis) {  // (point's piece, local step) -> x, with the chain's start and
  // end x of each segment (ends: [[first, last]], as drawn from its first kept row to its cut)
  const kept = keptPieces(segs), mi = D.metrics.indexOf(axis);
  const time = p => timePiece(p.ri, p.pi, p.t);
  const base = new Map();  // relative: hours the segments before a point's took, and its start
  if (axis === "relative") {
    let done = 0;
    segs.forEach((s, k) => {
      const own = kept.filter(p => p.k === k);
      if (!own.length) return;
      const a = own[0], b = own[own.length - 1], t0 = interp(time(a), a.first);
      base.set(k, [done, t0]);
      done += interp(time(b), b.last) - t0;
    });
  }
  const at = (p, s) => axis === "global" ? runs[p.ri].offset + s : axis === "local" ? s
    : axis === "wall" ? interp(time(p), s)
    : axis === "relative" ? (base.get(p.k)[0] + interp(time(p), s) - base.get(p.k)[1]) / 3600
    : interp(piece(p.ri, p.pi, mi, p.t), s);
  const ends = segs.map((s, k) => {
    const own = kept.filter(p => p.k === k);
    return own.length ? [at(own[0], own[0].first), at(own[own.length - 1], own[own.length - 1].last)] : null;
  });
  return {at, ends, kept};
}
function axisExtent(id, axis) {  // [lo, hi] of the chain to id on axis
  if (axis === "global") return extent(chainOf(id));
  const {at, kept} = axisOf(chainOf(id), axis), mi = D.metrics.indexOf(axis);
  let lo = Infinity, hi = -Infinity;
  for (const p of kept) {
    const rows = axis === "local" ? null : axis === "wall" || axis === "relative"
      ? timePiece(p.ri, p.pi, p.t) : piece(p.ri, p.pi, mi, p.t);
    for (const s of rows ? rows[0] : [p.first, p.last]) {
      const v = at(p, s);
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  }
  return lo <= hi ? [lo, hi > lo ? hi : lo + 1] : [0, 1];
}
function cutsOn(segs, axis, ends) {  // x of each resume line: where the next run's rows start
  // (local step: where its parent was cut)
  const out = [];
  segs.slice(0, -1).forEach((s, k) => {
    if (axis === "global") out.push(runs[s.run].offset + s.cut + 1);
    else if (axis === "local") out.push(s.cut);
    else if (ends[k + 1]) out.push(ends[k + 1][0]);
  });
  return out;
}
function isSorted(xs) {
  for (let i = 1; i < xs.length; i++) if (xs[i] < xs[i - 1]) return false;
  return true;
}
function pointAt(xs, x, only = null) {  // the index of the last point at or before x (of
  // points for which only(i) holds), or -1; a binary search where xs is sorted
  if (only == null && isSorted(xs)) {
    let lo = 0, hi = xs.length - 1, k = -1;
    while (lo <= hi) { const m = (lo + hi) >> 1; if (xs[m] <= x) { k = m; lo = m + 1; } else hi = m - 1; }
    return k;
  }
  let k = -1;
  for (let i = 0; i < xs.length; i++) if (xs[i] <= x && (only == null || only(i)) && (k < 0 || xs[i] >= xs[k])) k = i;
  return k;
}
function byRun(xy, run) {  // a line whose x goes back (local step): one line per run, each sorted
  if (isSorted(xy[0])) return [xy];
  const parts = new Map();
  xy[0].forEach((x, i) => {
    if (!parts.has(run[i])) parts.set(run[i], []);
    parts.get(run[i]).push(i);
  });
  return [...parts.values()].map(ix => {
    ix.sort((a, b) => xy[0][a] - xy[0][b]);
    return [ix.map(i => xy[0][i]), ix.map(i => xy[1][i])];
  });
}
function duration(hours) {  // relative time as read: "8.6 s", "12.5 min", "3.2 h"
  const secs = Math.abs(hours) * 3600, sign = hours < 0 ? "-" : "";
  if (secs === 0) return "0";
  const [v, unit] = secs < 60 ? [secs, "s"] : secs < 3600 ? [secs / 60, "min"] : [secs / 3600, "h"];
  return `${sign}${+v.toPrecision(3)} ${unit}`;
}
function xValues(axis) {  // an x axis's tick labels (wall time: uPlot's dates)
  const fmt = axis === "global" || axis === "local" ? steps : axis === "relative" ? duration : short;
  return axis === "wall" ? {} : {values: (u, vs) => vs.map(v => v == null ? "" : fmt(v))};
}
function xText(axis, x) {  // a point's x, as the hover card says it
  if (axis === "wall") return new Date(x * 1000).toLocaleString("sv-SE");  // YYYY-MM-DD hh:mm:ss, local
  return axis === "relative" ? duration(x) : num(x);
}
function setXAxis(name) {  // the page's x axis; a chain that does not offer it keeps the global step
  if (!(name in AXES) && !D.metrics.includes(name)) return false;
  state.xAxis = name; state.x = null;
  renderCharts(); renderBranches();
  return axisFor([state.leaf, ...state.compare]);
}
function renderXPick() {  // the chain's axes, and what the page draws instead of one it lacks
  const offered = axesOf(state.leaf);
  xPick.replaceChildren(...offered.map(a => el("option", {value: a}, axisName(a))),
    ...(offered.includes(state.xAxis) ? [] : [el("option", {value: state.xAxis}, axisName(state.xAxis))]));
  xPick.value = state.xAxis;
  const used = axisFor([state.leaf, ...state.compare]);
  xNote.textContent = used === state.xAxis ? "" : `${axisName(state.xAxis)} is not logged on every row of ` +
    `${state.compare.length ? "these chains" : "this chain"}: global step shown`;
}
