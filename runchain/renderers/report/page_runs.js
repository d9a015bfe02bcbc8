// runchain report: the runs table, and the start.
// One of the page's scripts: report/page.py joins them in order inside one function, so
// they share its names. Every string from a run reaches the DOM through textContent or
// setAttribute, never as HTML.
// -- runs table ----------------------------------------------------------------------------
// A row per run and a row per chain (to each leaf), sortable by any column (click its
// header), filtered by the text box; per charted metric its last, min and max (exact: the
// embedded rows keep each bucket's extremes and the ends); the config keys that differ
// between runs, each a column the checkboxes switch on and off.
const configKeys = [...new Set(runs.flatMap(r => Object.keys(r.config)))].sort()
  .filter(k => runs.some(r => r.config[k] !== runs[0].config[k]));
const table = {sort: null, desc: false, filter: "", keys: new Set(configKeys.slice(0, 6)),
               metrics: null};  // the metrics with columns: null follows the charted ones
const runsBox = el("div", {class: "table-wrap"});
const filterIn = el("input", {type: "search", class: "runs-filter", placeholder: "filter rows\u2026",
  oninput: e => { table.filter = e.target.value; renderRuns(); }});
const keyPicks = el("span", {class: "config-keys"}, ...configKeys.map(k => el("label", null,
  el("input", {type: "checkbox", value: k, checked: table.keys.has(k) ? "" : null,
    onchange: e => { e.target.checked ? table.keys.add(k) : table.keys.delete(k); renderRuns(); }}), " " + k)));
const metricCols = el("div", {class: "col-pop"});  // its checkboxes follow the charted metrics
const metricPick = el("details", {class: "metric-cols"},
  el("summary", {title: "which metrics have last, min and max columns"}, "metric columns"), metricCols);
const tableMetrics = () => table.metrics ?? state.metrics.filter((m, k) => state.metrics.indexOf(m) === k);
runsHolder.append(el("div", {class: "toolbar"}, el("label", null, "filter ", filterIn), metricPick,
  configKeys.length ? el("span", null, "config: ", keyPicks) : null), runsBox);
function renderMetricPicks() {
  const shown = new Set(tableMetrics());
  metricCols.replaceChildren(
    el("button", {type: "button", class: "charted", onclick: () => { table.metrics = null; renderRuns(); }},
       "the charted ones"),
    ...D.metrics.map(m => el("label", null, el("input", {type: "checkbox", value: m, checked: shown.has(m) ? "" : null,
      onchange: e => { const now = new Set(tableMetrics()); e.target.checked ? now.add(m) : now.delete(m);
                       table.metrics = D.metrics.filter(x => now.has(x)); renderRuns(); }}), " " + m)));
}
function runStats(ri, metric) {  // [last, min, max] of a run's logged values, or null
  const mi = D.metrics.indexOf(metric);
  let last = null, at = -Infinity, lo = Infinity, hi = -Infinity;
  runs[ri].pieces.forEach((_, pi) => {
    const p = mi < 0 ? null : piece(ri, pi, mi);
    if (!p) return;
    for (let k = 0; k < p[0].length; k++) {
      const v = p[1][k];
      if (p[0][k] > at) { at = p[0][k]; last = v; }
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
  });
  return last == null ? null : [last, lo, hi];
}
function chainStats(leaf, metric) {
  const y = chainData(leaf, metric).y;
  if (!y.length) return null;
  let lo = Infinity, hi = -Infinity;
  for (const v of y) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return [y[y.length - 1], lo, hi];
}
function tableColumns() {  // [name, cell(row) -> [sort value, text or node]]
  const cols = [
    ["run", r => [r.id, el("span", null, r.swatch, el("code", null, r.id))]],
    ["name", r => [r.name, r.name]],
    ["parent", r => [r.parent ?? "", el("code", null, r.parent ?? "")]],
    ["cut step", r => [r.parentStep, num(r.parentStep ?? null)]],
    ["local steps", r => [r.first, r.local]], ["global steps", r => [r.gfirst, r.global]],
    ["state", r => [r.state, r.state]], ["checkpoints", r => [r.nck, r.checkpoints]],
    ["differs", r => [r.differs, r.differs]]];  // from its parent and siblings (report/data.py)
  for (const m of tableMetrics()) ["last", "min", "max"].forEach((what, k) =>
    cols.push([`${m} ${what}`, r => { const st = r.stats(m); return [st ? st[k] : null, st ? short(st[k]) : ""]; }]));
  const asSort = v => v === "" || isNaN(Number(v)) ? v : Number(v);  // config values are JSON text
  for (const key of configKeys) if (table.keys.has(key)) cols.push([key, r => [asSort(r.config[key] ?? ""), r.config[key] ?? ""]]);
  if (runs.some(r => r.url)) cols.push(["W&B", r => [r.url ?? "", r.url ? el("a", {href: r.url}, "open") : ""]]);
  return cols;
}
function once(f) {  // f, computed once per argument
  const seen = new Map();
  return x => { if (!seen.has(x)) seen.set(x, f(x)); return seen.get(x); };
}
function tableRows() {
  const span = (r, o) => r.lastStep == null ? "no rows" : `${steps(o + r.firstStep)}\u2013${steps(o + r.lastStep)}`;
  const rows = runs.map((r, i) => ({id: r.id, select: r.id, name: r.name, parent: r.parent, parentStep: r.parentStep,
    first: r.firstStep, local: span(r, 0), gfirst: r.offset + r.firstStep, global: span(r, r.offset),
    state: r.state, nck: r.checkpoints.length,
    checkpoints: r.checkpoints.join(", ") + (r.abandoned.length ? ` (abandoned ${r.abandoned.join(", ")})` : ""), config: r.config, url: r.url,
    differs: Object.entries(r.differs).map(([k, v]) => `${k}=${v}`).join(" "),
    swatch: el("span", {class: "swatch", style: `background:${r.color}`}), stats: once(m => runStats(i, m)), cls: ""}));
  for (const leaf of D.allLeaves) {
    const segs = chainOf(leaf), [lo, hi] = extent(segs);
    rows.push({id: "chain to " + leaf, select: leaf, name: `${segs.length} runs`, parent: null, parentStep: null,
      first: null, local: "", gfirst: lo, global: `${steps(lo)}\u2013${steps(hi)}`, state: "chain", nck: null,
      checkpoints: "", differs: "", config: {}, url: null, swatch: el("span", {class: "swatch chain-swatch"}),
      stats: once(m => chainStats(leaf, m)), cls: "chain-row"});
  }
  return rows;
}
function renderRuns() {
  renderMetricPicks();
  const cols = tableColumns(), needle = table.filter.trim().toLowerCase();
  let rows = tableRows().map(r => ({r, cells: cols.map(([, cell]) => cell(r))}));
  if (needle) rows = rows.filter(({cells}) => cells.some(([, shown]) =>
    (shown instanceof Node ? shown.textContent : String(shown)).toLowerCase().includes(needle)));
  const at = cols.findIndex(([name]) => name === table.sort);
  if (at >= 0) {
    const key = row => row.cells[at][0], dir = table.desc ? -1 : 1;
    rows.sort((a, b) => {  // empty cells last either way; numbers as numbers
      const x = key(a), y = key(b);
      if (x == null || x === "") return y == null || y === "" ? 0 : 1;
      if (y == null || y === "") return -1;
      return (typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y))) * dir;
    });
  }
  const head = cols.map(([name]) => el("th", {"aria-sort": name === table.sort ? (table.desc ? "descending" : "ascending") : null,
    title: "sort by " + name, onclick: () => { table.desc = table.sort === name && !table.desc; table.sort = name; renderRuns(); }},
    name, name === table.sort ? (table.desc ? " \u25bc" : " \u25b2") : ""));
  runsBox.replaceChildren(el("table", null, el("thead", null, el("tr", null, ...head)),
    el("tbody", null, ...rows.map(({r, cells}) => el("tr", {class: r.cls, "data-row": r.id, onclick: () => pick(r.select)},
      ...cells.map(([, shown], k) => el("td", {class: cols[k][0] === "state" ? "state-" + r.state : null,
        title: shown instanceof Node ? shown.textContent : String(shown)}, shown)))))));  // whole on hover
}

// -- start ---------------------------------------------------------------------------------
function markReady() {  // the first chart is drawn; data-ready lets a test wait without eval (CSP)
  if (api.readyAt != null) return;
  api.readyAt = performance.now();
  document.documentElement.dataset.ready = "1";
}

// The URL's hash keeps the view: #view?chain=<leaf>&vs=<leaf>&m=<metric>&m=...&smooth=0.6&log=1&x=lo,hi
// &y=<metric>,<min>,<max> (a chart's y range; an empty bound is auto)
// (URLSearchParams), rewritten as it changes; opening the file with it restores that view.
let restoring = false;
function readView() {
  if (!location.hash.startsWith("#view?")) return null;
  const q = new URLSearchParams(location.hash.slice(6)), x = (q.get("x") || "").split(",").map(Number);
  return {chain: q.get("chain"), compare: q.getAll("vs").filter(l => byId.has(l)),
          metrics: q.getAll("m").filter(m => D.metrics.includes(m)),
          smooth: Math.min(0.99, Math.max(0, +q.get("smooth") || 0)), log: q.get("log") === "1",
          xAxis: q.get("xaxis") && (q.get("xaxis") in AXES || D.metrics.includes(q.get("xaxis"))) ? q.get("xaxis") : "global",
          x: x.length === 2 && x.every(Number.isFinite) && x[0] < x[1] ? x : null,
          follow: q.has("follow") ? q.get("follow") === "1" : null,
          y: Object.fromEntries(q.getAll("y").map(v => {  // the metric may hold commas: split from the end
            const parts = v.split(","), hi = parts.pop(), lo = parts.pop();
            return [parts.join(","), [bound(lo), bound(hi)]];
          }).filter(([m, r]) => D.metrics.includes(m) && r.some(b => b != null)))};
}
function bound(text) {  // a y bound as typed: a finite number, else null (auto)
  const v = text == null || String(text).trim() === "" ? NaN : Number(text);
  return Number.isFinite(v) ? v : null;
}
function saveView() {
  if (restoring || state.leaf == null) return;
  const q = new URLSearchParams({chain: state.leaf});
  for (const l of state.compare) q.append("vs", l);
  for (const m of state.metrics) q.append("m", m);
  if (state.smooth) q.set("smooth", state.smooth);
  if (state.log) q.set("log", "1");
  if (D.reload) q.set("follow", state.follow ? "1" : "0");
  if (state.xAxis !== "global") q.set("xaxis", state.xAxis);
  if (state.x) q.set("x", state.x.map(v => +v.toPrecision(10)).join(","));
  for (const [m, [lo, hi]] of Object.entries(state.y)) q.append("y", [m, lo ?? "", hi ?? ""].join(","));
  history.replaceState(null, "", "#view?" + q);
}
function applyView(view) {
  restoring = true;
  if (view && byId.has(view.chain)) state.leaf = view.chain;
  // --watch: follow the newest leaf unless the URL pins a chain and says not to
  state.follow = !!D.reload && (view?.follow ?? !(view && byId.has(view.chain)));
  followBox.checked = state.follow;
  const followed = state.follow && newestLeaf() != null && newestLeaf() !== state.leaf;
  if (followed) state.leaf = newestLeaf();  // a new chain: the old one's zoom is not kept
  if (view && view.metrics.length) state.metrics = view.metrics;
  if (view) { state.compare = view.compare; state.y = view.y; state.xAxis = view.xAxis; }
  if (view) { state.smooth = view.smooth; smoothIn.value = view.smooth; smoothOut.textContent = view.smooth.toFixed(2);
              state.log = view.log; logBox.checked = view.log; }
  if (state.leaf != null) select(state.leaf, view && !followed ? view.x : null);
  restoring = false;
  saveView();
}
addEventListener("hashchange", () => { const view = readView(); if (view) applyView(view); });

chainPick.append(...D.leaves.map(l => el("option", {value: l}, label(byId.get(l)))));
applyView(readView());
if (state.leaf == null || !api.charts.some(c => c)) markReady();
let resizing = null;
addEventListener("resize", () => {
  clearTimeout(resizing);
  resizing = setTimeout(() => { renderTree(); renderCharts(); renderBranches(); }, 150);
});
