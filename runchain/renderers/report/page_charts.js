// runchain report: the chain's charts.
// One of the page's scripts: report/page.py joins them in order inside one function, so
// they share its names. Every string from a run reaches the DOM through textContent or
// setAttribute, never as HTML.
// -- chain charts --------------------------------------------------------------------------
let syncing = false, hovered = null, runsLater = null;  // hovered: the chart under the mouse
let openY = null;  // the metric whose y-range box is open
function shareZoom(u, key) {
  if (key !== "x" || syncing || !api.charts.includes(u)) return;  // not a chart already replaced
  syncing = true;
  state.x = [u.scales.x.min, u.scales.x.max];
  for (const c of api.charts) if (c && c !== u) c.setScale("x", {min: state.x[0], max: state.x[1]});
  syncing = false;  // not the branches: they always span their whole root
  saveView();
}
function resetZoom() {
  state.x = null;
  const ids = [state.leaf, ...state.compare], axis = axisFor(ids), spans = ids.map(l => axisExtent(l, axis));
  const lo = Math.min(...spans.map(s => s[0])), hi = Math.max(...spans.map(s => s[1]));
  syncing = true;
  for (const c of api.charts) if (c) c.setScale("x", {min: lo, max: hi});
  syncing = false;
  saveView();
}
function stroke(segs, ends, alpha) {  // one line, each run's stretch in its colour: from
  // halfway between the last x of the run before and its first, to halfway past its last
  const drawn = segs.map((s, k) => [s, ends[k]]).filter(([, e]) => e);
  return u => {
    const {left, width} = u.bbox, ctx = u.ctx;
    if (!(width > 0)) return runs[segs[0].run].color;
    const g = ctx.createLinearGradient(left, 0, left + width, 0);
    const at = v => Math.min(1, Math.max(0, (u.valToPos(v, "x", true) - left) / width));
    drawn.forEach(([s, e], k) => {
      const c = runs[s.run].color + alpha, prev = drawn[k - 1], next = drawn[k + 1];
      g.addColorStop(at(prev ? (prev[1][1] + e[0]) / 2 : -Infinity), c);
      g.addColorStop(at(next ? (e[1] + next[1][0]) / 2 : Infinity), c);
    });
    return g;
  };
}
function chartSize(box) {
  const W = Math.max(280, grid.clientWidth), cols = W >= 900 ? 2 : 1;
  return {width: Math.floor(W / cols) - 18, height: 220};
}
function makeCard(metric, index, box) {  // the card now; its data and chart by card.draw(), when seen
  let d, segs, f, drawnRaw, smooth, axis;
  const tipBox = el("div", {class: "chart-tip"});
  const pick = el("input", {list: "rc-metrics", class: "metric-pick", value: metric, "aria-label": "metric",
    onchange: e => setMetric(index, e.target.value)});
  const body = el("div", {class: "plot"});
  let u = null;  // the chart, once drawn
  const save = (what, title, make) => el("button", {type: "button", class: "save " + what, title,
    onclick: () => { if (u) make(u); }}, what.toUpperCase());
  const card = el("div", {class: "card"}, el("div", {class: "card-head"}, pick,
    save("png", "save this chart as a PNG picture", savePng),
    save("csv", "save the rows this chart draws as CSV",
         v => state.compare.length ? compareCsv(metric) : saveCsv(v, d, smooth, f, axis)),
    yControl(metric),
    el("button", {type: "button", class: "remove", title: "remove this chart",
      onclick: () => { state.metrics.splice(index, 1); renderCharts(); }}, "\u00d7")), body, tipBox);
  card.style.width = chartSize().width + 10 + "px";  // its size before its chart is drawn
  box.append(card);
  const empty = where => body.append(el("p", {class: "meta empty"}, `not logged in ${where}`));
  if (state.compare.length) {  // page_compare.js: every compared chain on this chart
    card.draw = () => {
      const {lines, empty: none} = compareData(metric);
      if (none) empty("these chains");
      else api.charts[index] = u = drawCompare(metric, lines, body, tipBox);
    };
    return card;
  }
  card.draw = () => {
    axis = axisFor([state.leaf]);
    d = chainData(state.leaf, metric, axis); segs = d.segs;
    if (!d.x.length) return empty("this chain");
    headNote(body, d.y);
    const raw = d.y.map(v => state.log && v <= 0 ? null : v);
    f = state.log ? 1 : factor(raw);
    drawnRaw = raw.map(v => v == null ? null : v / f);
    smooth = ema(raw, state.smooth).map(v => v == null ? null : v / f);
    api.charts[index] = u = draw();
  };
  return card;
  function draw() {
  const [lo, hi] = state.x ?? axisExtent(state.leaf, axis);
  const dashed = [6, 4], soft = state.smooth > 0 ? "40" : "";
  let data, series, segOf = null;  // segOf: per series, its segment, where each run has its own
  if (d.sorted) {  // one line, each run's stretch in its colour; a chain of more runs than
    // colours: its runs from the (D.palette + 1)th on repeat the colours of the first ones,
    // so their rows are drawn again, dashed, in series 3 and 4
    const late = d.seg.map(k => k >= D.palette);
    const split = late.some(Boolean) ? (ys, want) => ys.map((v, k) => late[k] === want ? v : null) : null;
    data = [d.ax, ...(split ? [split(drawnRaw, false), split(smooth, false), split(drawnRaw, true), split(smooth, true)]
                           : [drawnRaw, smooth])];
    series = [{label: "raw", stroke: stroke(segs, d.ends, soft), width: 1, spanGaps: true},
              {label: "smoothed", stroke: stroke(segs, d.ends, ""), width: 1.5, spanGaps: true, show: state.smooth > 0},
              ...(split ? [{label: "raw, later runs", stroke: stroke(segs, d.ends, soft), width: 1, spanGaps: true, dash: dashed},
                           {label: "smoothed, later runs", stroke: stroke(segs, d.ends, ""), width: 1.5, spanGaps: true,
                            dash: dashed, show: state.smooth > 0}] : [])];
  } else {  // x goes back from run to run (local step): a line per run, raw and smoothed
    const shown = [...new Set(d.seg)], tables = shown.map(k => {
      const ix = d.seg.flatMap((s, i) => s === k ? [i] : []).sort((a, b) => d.ax[a] - d.ax[b]);
      return [ix.map(i => d.ax[i]), ix.map(i => drawnRaw[i]), ix.map(i => smooth[i])];
    });
    data = uPlot.join(tables);
    segOf = shown.flatMap(k => [k, k]);
    series = shown.flatMap(k => {
      const color = runs[segs[k].run].color, dash = k >= D.palette ? dashed : undefined;
      return [{label: "raw " + runs[segs[k].run].id, stroke: color + soft, width: 1, spanGaps: true, dash},
              {label: "smoothed " + runs[segs[k].run].id, stroke: color, width: 1.5, spanGaps: true, dash,
               show: state.smooth > 0}];
    });
  }
  const cuts = cutsOn(segs, axis, d.ends);
  const u = new uPlot({
    ...chartOptions(metric, f, lo, hi, axis),
    series: [{}, ...series],
    cursor: {sync: {key: "rc-chain"}, drag: {x: true, y: false}, points: {show: false},
             bind: {dblclick: () => () => { resetZoom(); return null; }}},
    hooks: {
      setScale: [shareZoom],
      draw: [u => {
        const ctx = u.ctx, {top, height} = u.bbox;
        ctx.save(); ctx.setLineDash([5, 4]); ctx.strokeStyle = "#555"; ctx.lineWidth = 1;
        for (const c of cuts) {  // where each run after the first starts
          const x = Math.round(u.valToPos(c, "x", true)) + 0.5;
          if (x < u.bbox.left || x > u.bbox.left + u.bbox.width) continue;
          ctx.beginPath(); ctx.moveTo(x, top); ctx.lineTo(x, top + height); ctx.stroke();
        }
        ctx.restore();
        markReady();
      }],
      setCursor: [u => {
        const ci = u.cursor.idx;  // the card on the chart under the mouse; the others: the line
        if (ci == null || u.cursor.left < 0 || u !== hovered) { tipBox.style.display = "none"; return; }
        let i = ci;
        if (segOf) {  // the run of the line nearest the cursor, its last point at or before x
          const best = nearestSeries(u, ci);
          i = best > 0 ? pointAt(d.ax, u.data[0][ci], j => d.seg[j] === segOf[best - 1]) : -1;
          if (i < 0) { tipBox.style.display = "none"; return; }
        }
        const r = runs[d.run[i]];
        tipBox.textContent = [`${metric}`, `run ${label(d.run[i])}`,
          `local step ${d.x[i] - r.offset}`, `global step ${d.x[i]}`]
          .concat(axis !== "global" && axis !== "local" ? [`${axisName(axis)} ${xText(axis, d.ax[i])}`] : [])
          .concat([`value ${num(d.y[i])}`])
          .concat(state.smooth > 0 ? [`smoothed ${num(smooth[i] == null ? null : smooth[i] * f)}`] : []).join("\n");
        tipBox.style.display = "block";
        const x = u.cursor.left + u.bbox.left / devicePixelRatio + body.offsetLeft;
        const y = u.cursor.top + u.bbox.top / devicePixelRatio + body.offsetTop;
        tipBox.style.left = (x > u.width / 2 ? x - tipBox.offsetWidth - 14 : x + 14) + "px";
        tipBox.style.top = (y > u.height / 2 ? y - tipBox.offsetHeight - 14 : y + 14) + "px";
      }],
    },
  }, data, body);
  trackHover(u);
  u.metric = metric; u.factor = f; u.chainRuns = d.run; u.axis = axis; u.chainX = d.ax; u.cuts = cuts;
  return u;
  }
}
function yControl(metric) {  // "y": the chart's y range, min and max (empty: auto)
  const [lo, hi] = state.y[metric] ?? [];
  const input = (value, which) => el("input", {type: "text", inputmode: "decimal", class: "y-" + which,
    placeholder: "auto", size: 6, "aria-label": `y ${which}`, value: value ?? null,
    onchange: () => setYRange(metric, box.querySelector(".y-min").value, box.querySelector(".y-max").value)});
  const box = el("details", {class: "y-range" + (lo != null || hi != null ? " set" : ""),
    open: openY === metric ? "" : null,  // still open once the charts redraw with the new range
    ontoggle: e => { if (e.target.open) openY = metric; else if (openY === metric) openY = null; }},
    el("summary", {title: "this chart's y range"}, "y"),
    el("div", {class: "y-pop"}, "min ", input(lo, "min"), " max ", input(hi, "max")));
  return box;
}
function chartOptions(metric, f, lo, hi, axis) {  // what every chain chart shares: size, scales, axes
  const range = (u, a, b) => {  // auto, or the bounds set for this metric's chart (setYRange)
    const [min, max] = state.y[metric] ?? [], auto = yRange(u, a, b);
    const at = (v, k) => v == null || (state.log && v <= 0) ? auto[k] : v / f;
    const out = [at(min, 0), at(max, 1)];
    return out[0] < out[1] ? out : auto;
  };
  return {
    ...chartSize(), legend: {show: false},
    scales: {x: {time: axis === "wall", auto: false, min: lo, max: hi, range: (u, a, b) => [a, b]},
             y: {distr: state.log ? 3 : 1, range}},
    axes: [{size: 44, label: axisName(axis), ...xValues(axis)},
           {size: 72, label: metric, values: yLabels(f),
            ...(state.log ? {splits: logSplits} : {})}],
  };
}
function trackHover(u) {  // its hover card shows only while the mouse is over it
  u.over.addEventListener("mouseenter", () => { hovered = u; });
  u.over.addEventListener("mouseleave", () => { if (hovered === u) hovered = null; });
}
function fileName(metric, ext) {  // e.g. loss_00-chain-3a522nzt.png
  return `${metric}-chain-${state.leaf}`.replace(/[^A-Za-z0-9._-]+/g, "_") + "." + ext;
}
function download(blob, name) {  // a blob: URL with the download attribute; nothing leaves the page
  const a = el("a", {href: URL.createObjectURL(blob), download: name});
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}
function savePng(u) {  // the chart as drawn, under its title and chain, on white
  const c = u.ctx.canvas, pad = Math.round(26 * devicePixelRatio), out = document.createElement("canvas");
  out.width = c.width; out.height = c.height + pad;
  const ctx = out.getContext("2d");
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, out.width, out.height);
  ctx.fillStyle = "#222"; ctx.font = `600 ${Math.round(13 * devicePixelRatio)}px system-ui, sans-serif`;
  const what = [state.leaf, ...state.compare].map(l => label(byId.get(l))).join(", ");
  ctx.fillText(`${u.metric} \u2014 chain${state.compare.length ? "s" : ""} to ${what}`, 8 * devicePixelRatio, 18 * devicePixelRatio);
  ctx.drawImage(c, 0, pad);
  out.toBlob(b => download(b, fileName(u.metric, "png")), "image/png");
}
function saveCsv(u, d, smooth, f, axis) {  // the rows drawn (thinned as drawn), values exactly as
  // embedded; on an axis other than the steps, each row's x too
  const quote = v => /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v, extra = axis !== "global" && axis !== "local";
  const lines = [["global_step", "run_id", "step"].concat(extra ? ["x: " + axisName(axis)] : [], [u.metric])
    .concat(state.smooth > 0 ? ["smoothed"] : []).map(quote).join(",")];
  for (let i = 0; i < d.x.length; i++) {
    const r = runs[d.run[i]], row = [String(d.x[i]), quote(r.id), String(d.x[i] - r.offset)]
      .concat(extra ? [String(d.ax[i])] : [], [String(d.y[i])]);
    if (state.smooth > 0) row.push(smooth[i] == null ? "" : num(smooth[i] * f));
    lines.push(row.join(","));
  }
  download(new Blob([lines.join("\n") + "\n"], {type: "text/csv"}), fileName(u.metric, "csv"));
}
// Sections like a W&B workspace: one per metric group (the name before its first "/"),
// collapsible; the first EAGER charts are drawn at once, the others as they scroll near.
const EAGER = 4;
let nearby = null;
const groupOf = m => m.indexOf("/") > 0 ? m.slice(0, m.indexOf("/")) : "";
function matcher(pattern) {  // a glob (loss/*, *acc?) matches whole names; else a regex, any case
  const p = pattern.trim();
  if (!p) return () => true;
  if (/[*?]/.test(p) && !/[\\^$+|()[\]{}]|\.\*/.test(p)) {
    const re = new RegExp("^" + p.replace(/[.]/g, "\\.").replace(/\*/g, ".*").replace(/\?/g, ".") + "$");
    return m => re.test(m);
  }
  try { const re = new RegExp(p, "i"); return m => re.test(m); }
  catch (e) { return m => m.toLowerCase().includes(p.toLowerCase()); }
}
function renderCharts() {
  for (const c of api.charts) if (c) c.destroy();
  if (nearby) nearby.disconnect();
  grid.replaceChildren();
  api.charts = state.metrics.map(() => null);  // null until drawn, or where the chain did not log it
  const match = matcher(state.search), sections = new Map();
  state.metrics.forEach((m, i) => {
    if (!match(m)) return;
    if (!sections.has(groupOf(m))) sections.set(groupOf(m), []);
    sections.get(groupOf(m)).push(i);
  });
  if (sections.has("")) { const rest = sections.get(""); sections.delete(""); sections.set("", rest); }  // last
  nearby = new IntersectionObserver(seen => { for (const e of seen) if (e.isIntersecting) {
    nearby.unobserve(e.target); e.target.draw(); } }, {rootMargin: "400px 0px"});
  let eager = EAGER;
  for (const [group, shown] of sections) {
    const open = !state.collapsed.has(group), body = el("div", {class: "grid-body"});
    grid.append(el("section", {class: "metric-section", "data-group": group},
      el("button", {type: "button", class: "section-head", "aria-expanded": String(open),
        onclick: () => { state.collapsed[open ? "add" : "delete"](group); renderCharts(); }},
        `${open ? "\u25be" : "\u25b8"} ${group || "other metrics"}`, el("span", {class: "count"}, ` ${shown.length}`)),
      body));
    if (!open) continue;
    for (const i of shown) {
      const card = makeCard(state.metrics[i], i, body);
      if (eager-- > 0) card.draw(); else nearby.observe(card);
    }
  }
  if (!sections.size && state.metrics.length) grid.append(el("p", {class: "meta"}, `no chart matches ${state.search}`));
  renderLegend(); renderXPick(); saveView();
  clearTimeout(runsLater); runsLater = setTimeout(renderRuns, 0);  // its metric columns follow, after the charts
}
function renderLegend() {
  const segs = chainOf(state.leaf);
  if (state.compare.length) {  // colour is a chain here, as in the branches chart
    pathLine.textContent = `comparing ${state.compare.length + 1} chains; dark grey: the rows they share`;
    legend.replaceChildren(...[state.leaf, ...state.compare].map((l, k) => el("span", {class: "item"},
      el("span", {class: "swatch", style: `background:${CHAIN_COLORS[k % CHAIN_COLORS.length]}`}),
      "chain to " + label(byId.get(l)))));
    return;
  }
  pathLine.textContent = segs.map(s => runs[s.run].id + (s.cut != null ? "@" + s.cut : "")).join(" \u2192 ");
  legend.replaceChildren(...segs.map(s => {
    const r = runs[s.run], last = s.cut ?? r.lastStep;
    return el("span", {class: "item", title: `run ${r.id}: local steps ${r.firstStep}\u2013${num(last)}`},
      el("span", {class: "swatch", style: `background:${r.color}`}), label(s.run),
      r.state !== "finished" ? el("em", null, " " + r.state) : null);
  }));
}
function select(id, x = null) {  // x: the step range to zoom to (default the whole chain)
  if (!byId.has(id)) return;
  state.leaf = id;
  state.x = x;
  state.compare = state.compare.filter(c => c !== id);
  renderCompare();
  if (![...chainPick.options].some(o => o.value === id)) chainPick.append(el("option", {value: id}, label(byId.get(id))));
  chainPick.value = id;
  renderTree(); renderCharts();
  const root = runs[chainOf(id)[0].run].id;
  state.root = root; rootPick.value = root;  // its chain is drawn wider there
  if (api.readyAt == null) setTimeout(renderBranches, 0); else renderBranches();  // after the charts
}
function pick(id) {  // a chain the user chose: following the newest stops
  if (state.follow) setFollow(false);
  select(id);
}
function newestLeaf() {  // the leaf that started last (as listed where no start is known)
  let best = null, at = -Infinity;
  for (const l of D.allLeaves) { const t = runs[byId.get(l)].started ?? -Infinity; if (t >= at) { at = t; best = l; } }
  return best;
}
function setFollow(on) {  // --watch: chart the newest leaf's chain at each reload
  state.follow = on; followBox.checked = on;
  if (on && newestLeaf() != null && newestLeaf() !== state.leaf) select(newestLeaf()); else saveView();
}
function setMetric(i, metric) {
  if (!D.metrics.includes(metric)) return false;
  state.metrics[i] = metric; renderCharts();
  return true;
}
function setSmoothing(w) {
  state.smooth = w; smoothIn.value = w; smoothOut.textContent = w.toFixed(2);
  renderCharts(); renderBranches();
}
function setLog(on) { state.log = on; logBox.checked = on; renderCharts(); renderBranches(); }
function setYRange(metric, lo, hi) {  // a chart's y range: min and max, a null bound auto
  lo = bound(lo); hi = bound(hi);
  if (lo == null && hi == null) delete state.y[metric]; else state.y[metric] = [lo, hi];
  renderCharts();
}

