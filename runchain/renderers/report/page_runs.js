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
const table = {sort: null, desc: false, filter: "", keys: new Set(configKeys.slice(0, 6))};
const runsBox = el("div", {class: "table-wrap"});
const filterIn = el("input", {type: "search", class: "runs-filter", placeholder: "filter rows\u2026",
  oninput: e => { table.filter = e.target.value; renderRuns(); }});
const keyPicks = el("span", {class: "config-keys"}, ...configKeys.map(k => el("label", null,
  el("input", {type: "checkbox", value: k, checked: table.keys.has(k) ? "" : null,
    onchange: e => { e.target.checked ? table.keys.add(k) : table.keys.delete(k); renderRuns(); }}), " " + k)));
runsHolder.append(el("div", {class: "toolbar"}, el("label", null, "filter ", filterIn),
  configKeys.length ? el("span", null, "config: ", keyPicks) : null), runsBox);
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
  for (const m of state.metrics) ["last", "min", "max"].forEach((what, k) =>
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
    el("tbody", null, ...rows.map(({r, cells}) => el("tr", {class: r.cls, "data-row": r.id, onclick: () => select(r.select)},
      ...cells.map(([, shown], k) => el("td", {class: cols[k][0] === "state" ? "state-" + r.state : null}, shown)))))));
}

// -- start ---------------------------------------------------------------------------------
function markReady() {  // the first chart is drawn; data-ready lets a test wait without eval (CSP)
  if (api.readyAt != null) return;
  api.readyAt = performance.now();
  document.documentElement.dataset.ready = "1";
}

// The URL's hash keeps the view: #view?chain=<leaf>&vs=<leaf>&m=<metric>&m=...&smooth=0.6&log=1&x=lo,hi
// (URLSearchParams), rewritten as it changes; opening the file with it restores that view.
let restoring = false;
function readView() {
  if (!location.hash.startsWith("#view?")) return null;
  const q = new URLSearchParams(location.hash.slice(6)), x = (q.get("x") || "").split(",").map(Number);
  return {chain: q.get("chain"), compare: q.getAll("vs").filter(l => byId.has(l)),
          metrics: q.getAll("m").filter(m => D.metrics.includes(m)),
          smooth: Math.min(0.99, Math.max(0, +q.get("smooth") || 0)), log: q.get("log") === "1",
          x: x.length === 2 && x.every(Number.isFinite) && x[0] < x[1] ? x : null};
}
function saveView() {
  if (restoring || state.leaf == null) return;
  const q = new URLSearchParams({chain: state.leaf});
  for (const l of state.compare) q.append("vs", l);
  for (const m of state.metrics) q.append("m", m);
  if (state.smooth) q.set("smooth", state.smooth);
  if (state.log) q.set("log", "1");
  if (state.x) q.set("x", state.x.map(v => +v.toPrecision(10)).join(","));
  history.replaceState(null, "", "#view?" + q);
}
function applyView(view) {
  restoring = true;
  if (view && byId.has(view.chain)) state.leaf = view.chain;
  if (view && view.metrics.length) state.metrics = view.metrics;
  if (view) state.compare = view.compare;
  if (view) { state.smooth = view.smooth; smoothIn.value = view.smooth; smoothOut.textContent = view.smooth.toFixed(2);
              state.log = view.log; logBox.checked = view.log; }
  if (state.leaf != null) select(state.leaf, view && view.x);
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
