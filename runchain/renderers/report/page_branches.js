// runchain report: the branches chart.
// One of the page's scripts: report/page.py joins them in order inside one function, so
// they share its names. Every string from a run reaches the DOM through textContent or
// setAttribute, never as HTML.
// -- branches ------------------------------------------------------------------------------
function renderBranches() {
  if (api.branches) { api.branches.destroy(); api.branches = null; }
  branchBox.replaceChildren(); branchLegend.replaceChildren();
  const metric = state.branchMetric, root = state.root ?? D.roots[0];
  if (metric == null || root == null) return;
  const leaves = D.allLeaves.filter(l => runs[chainOf(l)[0].run].id === root);
  const many = leaves.length > CHAIN_COLORS.length;
  const colorOf = leaves.map((l, k) => many ? (l === state.leaf ? "#d62728" : "#bbb") : CHAIN_COLORS[k]);
  const axis = axisFor(leaves), {chains, own, shared} = overlaySeries(leaves, metric, axis);
  const lines = [...[...shared.values()].map(({ri, abandoned, xy}) => ({t: xy, color: SHARED,
      what: `rows shared by chains: run ${label(ri)}${abandoned ? " (a timeline it abandoned)" : ""}`})),
    ...leaves.map((l, k) => ({t: own[k], color: colorOf[k], leaf: l, what: `chain to ${label(byId.get(l))}`}))]
    .filter(s => s.t[0].length)
    .flatMap(s => byRun(s.t, s.t[2]).map(t => ({...s, t})))  // x that goes back: a line per run
    .sort((a, b) => layer(a) - layer(b));  // drawn last, on top: the chosen chain, then shared rows
  function layer(s) { return s.leaf === state.leaf ? 2 : s.leaf == null ? 1 : 0; }
  const drawn = leaves.filter((l, k) => chains[k].x.length);
  branchLegend.append(el("span", {class: "meta"}, many ? `${leaves.length} chains: the chosen one in red; ` +
      "hover a line to bring it forward. " : "Colour: each chain, named by its leaf (in the charts above, a run). ",
    "Dark grey: rows several chains share."),
    ...(many ? [] : drawn.map(l => { const k = leaves.indexOf(l);
      return el("span", {class: "item", onclick: () => pick(l)},
        el("span", {class: "swatch", style: `background:${colorOf[k]}`}), label(byId.get(l))); })));
  if (!lines.length) { branchBox.append(el("p", {class: "meta empty"}, `${metric} not logged from this root`)); return; }
  const note = logNote(lines.flatMap(s => Array.from(s.t[1])));  // smoothing and log y as above
  if (note) branchLegend.append(note);
  const data = uPlot.join(lines.map(s => [s.t[0], ema(s.t[1].map(v => state.log && v <= 0 ? null : v), state.smooth)]));
  let f = 1;
  if (!state.log) for (const s of data.slice(1)) f = Math.max(f, factor(s));
  const spans = axis === "global" ? [rootExtent(root)] : leaves.map(l => axisExtent(l, axis));
  const lo = Math.min(...spans.map(s => s[0])), hi = Math.max(...spans.map(s => s[1]));  // the whole
  // root, whichever chain is charted above
  const forks = [];  // [x, value] where a child started from a run of this root
  for (const c of chains) c.segs.slice(0, -1).forEach(s => {  // the parent's row at each cut
    const at = runs[s.run].offset + s.cut, k = c.x.lastIndexOf(at);
    if (k >= 0) forks.push([c.ax[k], c.y[k]]);
  });
  const btip = el("div", {class: "chart-tip"});
  const u = new uPlot({
    width: Math.max(280, branchBox.clientWidth) - 4, height: 320, legend: {show: false},
    scales: {x: {time: axis === "wall", auto: false, min: lo, max: hi, range: (u, a, b) => [a, b]},
             y: {distr: state.log ? 3 : 1, range: yRange}},
    axes: [{size: 44, label: axisName(axis), ...xValues(axis)},
           {size: 72, label: metric, values: yLabels(f),
            ...(state.log ? {splits: logSplits} : {})}],
    series: [{}, ...lines.map(s => ({label: s.what, stroke: s.color, spanGaps: true,
      width: s.leaf != null && s.leaf === state.leaf ? 2 : 1.2}))],
    focus: {alpha: 0.25},
    cursor: {drag: {x: true, y: false}, points: {show: false}, focus: {prox: 24},
             bind: {dblclick: () => () => { u.setScale("x", u.full); return null; }}},
    hooks: {
      draw: [u => {
        const ctx = u.ctx; ctx.save(); ctx.fillStyle = "#000";
        for (const [x, y] of forks) {
          if (state.log && !(y > 0)) continue;  // off a log axis
          ctx.beginPath(); ctx.arc(u.valToPos(x, "x", true), u.valToPos(y / f, "y", true), 3 * devicePixelRatio, 0, 7); ctx.fill();
        }
        ctx.restore();
      }],
      setCursor: [u => {
        const i = u.cursor.idx;
        if (i == null || u.cursor.left < 0) { btip.style.display = "none"; return; }
        const best = nearestSeries(u, i);  // the line drawn nearest the cursor names its chain
        if (best < 0) { btip.style.display = "none"; return; }
        btip.textContent = [lines[best - 1].what, `${axisName(axis)} ${axis === "global" ? steps(u.data[0][i]) : xText(axis, u.data[0][i])}`,
          `${metric} ${num(u.data[best][i] * f)}`].join("\n");
        btip.style.display = "block";
        placeBeside(btip, u);
      }],
    },
  }, data.map((s, k) => k ? s.map(v => v == null ? null : v / f) : s), branchBox);
  branchBox.append(btip);
  u.full = {min: lo, max: hi}; u.leaves = drawn; u.axis = axis;
  api.branches = u;
}
function rootExtent(root) {  // first to last global step of every run under root
  const seen = [byId.get(root)];
  for (let k = 0; k < seen.length; k++) seen.push(...kids[seen[k]]);
  let lo = Infinity, hi = -Infinity;
  for (const i of seen) {
    const r = runs[i];
    lo = Math.min(lo, r.offset + r.firstStep);
    hi = Math.max(hi, r.offset + (r.lastStep ?? r.firstStep));
  }
  return [lo, Math.max(hi, lo + 1)];
}
