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

