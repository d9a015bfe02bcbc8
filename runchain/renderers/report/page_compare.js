// runchain report: comparing chains, W&B's "compare runs" for chains.
// One of the page's scripts: report/page.py joins them in order inside one function, so
// they share its names. Every string from a run reaches the DOM through textContent or
// setAttribute, never as HTML.
// -- compare chains ------------------------------------------------------------------------
// With chains to compare (state.compare), every chart overlays the chain to state.leaf and
// theirs, each in its own colour (CHAIN_COLORS, in that order), the rows they share drawn
// once in dark grey (overlaySeries); hover names the chain of the line nearest the cursor.
function compared() { return [state.leaf, ...state.compare]; }
function compare(ids) {  // the chains to compare with the charted one (test API too)
  state.compare = [...new Set(ids)].filter(id => byId.has(id) && id !== state.leaf);
  renderCompare(); renderCharts();
}
function renderCompare() {
  comparePick.replaceChildren(el("option", {value: ""}, "+ a chain\u2026"),
    ...D.allLeaves.filter(l => !compared().includes(l)).map(l => el("option", {value: l}, label(byId.get(l)))));
  compareChips.replaceChildren(...state.compare.map((l, k) => el("span", {class: "chip"},
    el("span", {class: "swatch", style: `background:${CHAIN_COLORS[(k + 1) % CHAIN_COLORS.length]}`}),
    label(byId.get(l)), el("button", {type: "button", class: "remove", title: "stop comparing",
      onclick: () => compare(state.compare.filter(c => c !== l))}, "\u00d7"))));
}
function compareData(metric) {  // {lines: [{t: [x, y], color, what}], empty: no line to draw}
  const leaves = compared(), {own, shared} = overlaySeries(leaves, metric, axisFor(leaves));
  const lines = [...[...shared.values()].map(({ri, abandoned, xy}) => ({t: xy, color: SHARED,
      what: `shared: run ${label(ri)}${abandoned ? " (a timeline it abandoned)" : ""}`})),
    ...leaves.map((l, k) => ({t: own[k], color: CHAIN_COLORS[k % CHAIN_COLORS.length], leaf: l,
                              what: `chain to ${label(byId.get(l))}`}))].filter(s => s.t[0].length)
    .flatMap(s => byRun(s.t, s.t[2]).map(t => ({...s, t})));  // x that goes back: a line per run
  return {lines, empty: !lines.length};
}
function drawCompare(metric, lines, body, tipBox) {  // lines: compareData(metric).lines
  headNote(body, lines.flatMap(s => Array.from(s.t[1])));
  const data = uPlot.join(lines.map(s => [s.t[0], s.t[1].map(v => state.log && v <= 0 ? null : v)]));
  let f = 1;
  if (!state.log) for (const s of data.slice(1)) f = Math.max(f, factor(s));
  const axis = axisFor(compared()), spans = compared().map(l => axisExtent(l, axis));
  const [lo, hi] = state.x ?? [Math.min(...spans.map(s => s[0])), Math.max(...spans.map(s => s[1]))];
  const u = new uPlot({
    ...chartOptions(metric, f, lo, hi, axis),
    series: [{}, ...lines.map(s => ({label: s.what, stroke: s.color, width: 1.3, spanGaps: true}))],
    focus: {alpha: 0.3},
    cursor: {sync: {key: "rc-chain"}, drag: {x: true, y: false}, points: {show: false}, focus: {prox: 24},
             bind: {dblclick: () => () => { resetZoom(); return null; }}},
    hooks: {
      setScale: [shareZoom],
      draw: [markReady],
      setCursor: [u => {
        const i = u.cursor.idx;
        if (i == null || u.cursor.left < 0 || u !== hovered) { tipBox.style.display = "none"; return; }
        const best = nearestSeries(u, i);  // the chain of the line nearest the cursor comes first
        const first = best > 0 ? lines[best - 1].leaf : null;
        tipBox.textContent = hoverText(metric, hoverEntries(metric, u.data[0][i], first), axis);
        tipBox.style.display = "block";
        placeBeside(tipBox, u);
      }],
    },
  }, data.map((s, k) => k ? (state.smooth > 0 ? ema(s, state.smooth) : s).map(v => v == null ? null : v / f) : s), body);
  trackHover(u);
  u.metric = metric; u.lines = lines.map(s => s.what); u.axis = axis;
  return u;
}
function compareCsv(metric) {  // every compared chain's rows as drawn, with its leaf
  const quote = v => /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v;
  const out = [["chain", "global_step", "run_id", "step", metric].map(quote).join(",")];
  for (const l of compared()) {
    const d = chainData(l, metric);
    for (let i = 0; i < d.x.length; i++) {
      const r = runs[d.run[i]];
      out.push([quote(l), String(d.x[i]), quote(r.id), String(d.x[i] - r.offset), String(d.y[i])].join(","));
    }
  }
  download(new Blob([out.join("\n") + "\n"], {type: "text/csv"}), fileName(metric, "csv"));
}
function hoverEntries(metric, x, first = null) {  // each charted chain's row at x on the page's
  // axis (the last it drew at or before x): [{chain, value, run, step, global, x}], ``first``'s first
  const leaves = compared().filter(l => l !== first), axis = axisFor(compared());
  if (first != null && compared().includes(first)) leaves.unshift(first);
  const out = [];
  for (const l of leaves) {
    const d = chainData(l, metric, axis), k = pointAt(d.ax, x);
    if (k < 0) continue;
    const r = runs[d.run[k]];
    out.push({chain: l, value: d.y[k], run: r.id, step: d.x[k] - r.offset, global: d.x[k], x: d.ax[k]});
  }
  return out;
}
function hoverText(metric, entries, axis) {  // the hover card: one block per chain
  const extra = axis !== "global" && axis !== "local";
  return [metric, ...entries.map(e => `chain to ${label(byId.get(e.chain))}: ${num(e.value)}\n` +
    `  run ${label(byId.get(e.run))}, local step ${steps(e.step)}, global step ${steps(e.global)}` +
    (extra ? `, ${axisName(axis)} ${xText(axis, e.x)}` : ""))].join("\n");
}
function hoverAt(i, x) {  // test API: the hover card's entries on chart i at x (the page's axis)
  const u = api.charts[i];
  return u ? hoverEntries(u.metric, x) : null;
}

