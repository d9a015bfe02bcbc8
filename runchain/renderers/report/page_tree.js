// runchain report: the page's skeleton and the tree map.
// One of the page's scripts: report/page.py joins them in order inside one function, so
// they share its names. Every string from a run reaches the DOM through textContent or
// setAttribute, never as HTML.
// -- page skeleton -------------------------------------------------------------------------
const nChains = D.allLeaves.length;
document.title = "runchain report: " + D.where;
const header = el("header", null, el("h1", null, "runchain report"),
  el("p", {class: "meta"}, `${runs.length} runs, ${rootCount()}, ${nChains} chain(s), ` +
    `${D.metrics.length} metric(s), read from `, el("code", null, D.where), `; runchain ${D.version}`),
  D.reload ? el("p", {class: "meta live"}, `live: written at ${D.written}, reloads every ${D.reload} s ` +
    "while runchain report --watch runs") : null,
  D.notes.length ? el("ul", {class: "meta"}, ...D.notes.map(n => el("li", null, n))) : null,
  el("nav", null, ...["tree", "chains", "branches", "runs"].map(s => el("a", {href: "#" + s,  // the hash keeps the view
    onclick: e => { e.preventDefault(); document.getElementById(s).scrollIntoView(); }}, s))));
const metricList = el("datalist", {id: "rc-metrics"}, ...D.metrics.map(m => el("option", {value: m})));
const treeBox = el("div", {class: "treemap"});
const chainPick = el("select", {class: "chain-pick", onchange: e => pick(e.target.value)});
const followBox = el("input", {type: "checkbox", class: "follow", onchange: e => setFollow(e.target.checked)});
const comparePick = el("select", {class: "compare-pick", "aria-label": "compare with",
  onchange: e => { if (e.target.value) compare([...state.compare, e.target.value]); }});
const compareChips = el("span", {class: "chips"});
const logBox = el("input", {type: "checkbox", class: "logy", onchange: e => setLog(e.target.checked)});
const smoothOut = el("output", null, "0");
const smoothIn = el("input", {type: "range", min: 0, max: 0.99, step: 0.01, value: 0, class: "smooth",
  oninput: e => setSmoothing(+e.target.value)});
const addIn = el("input", {list: "rc-metrics", placeholder: "a metric, or loss/*\u2026", class: "add-metric",
  onchange: e => {  // a name, or a glob: every metric it matches that is not charted yet
    const match = /[*?]/.test(e.target.value) ? matcher(e.target.value) : m => m === e.target.value;
    const more = D.metrics.filter(m => match(m) && !state.metrics.includes(m));
    if (more.length) { state.metrics.push(...more); e.target.value = ""; renderCharts(); }
  }});
const searchIn = el("input", {type: "search", class: "chart-search", placeholder: "regex or glob\u2026",
  oninput: e => { state.search = e.target.value; renderCharts(); }});
const pathLine = el("p", {class: "meta chain-path"}), legend = el("div", {class: "legend"});
const grid = el("div", {class: "grid"});
const rootPick = el("select", {class: "root-pick", onchange: e => { state.root = e.target.value; renderBranches(); }},
  ...D.roots.map(r => el("option", {value: r}, label(byId.get(r)))));
const branchIn = el("input", {list: "rc-metrics", class: "branch-metric", value: state.branchMetric ?? "",
  onchange: e => { if (D.metrics.includes(e.target.value)) { state.branchMetric = e.target.value; renderBranches(); } }});
const runsHolder = el("div", {class: "runs"});  // page_runs.js fills it
const branchBox = el("div", {class: "chart branches"}), branchLegend = el("div", {class: "legend"});
document.body.append(header, metricList,
  el("h2", {id: "tree"}, "Tree of runs on the global step axis"),
  el("p", {class: "hint"}, "Each bar is a run from its first to its last global step; ticks are " +
    "checkpoints" + (runs.some(r => r.abandoned.length) ? " (dashed: saved in rows a later resume " +
    "in place or rewind replaced)" : "") + "; the faint part is what no chain keeps; runs off " +
    "the charted chain are dimmed. Colour is a run: no two runs of one chain share one (past " +
    D.palette + " runs, the charts draw the later ones dashed). \u2715 marks " +
    "a crashed or failed run, \u25b6 a running one. Hover for details; click a run to chart the " +
    "chain that ends there."),
  treeBox,
  el("h2", {id: "chains"}, "Chain"),
  el("div", {class: "toolbar"}, el("label", null, "chain to ", chainPick),
    D.reload ? el("label", {title: "chart the chain of the newest leaf each time the page reloads"},
                  followBox, " follow newest") : null,
    el("label", null, "compare with ", comparePick), compareChips,
    el("label", null, "x ", xPick), xNote,
    el("label", null, logBox, " log y"),
    el("label", null, "smoothing ", smoothIn, " ", smoothOut),
    el("label", null, "search charts ", searchIn),
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
  el("h2", {id: "runs"}, "Runs"), runsHolder);
if (!D.metrics.length) grid.append(el("p", {class: "meta"}, "No metrics logged."));

// -- tree map ------------------------------------------------------------------------------
function renderTree() {
  const n = runs.length, lane = n <= 40 ? 18 : n <= 100 ? 9 : 6, labels = lane >= 9;
  const W = Math.max(300, treeBox.clientWidth), room = labels ? Math.min(260, W * 0.3) : 12;
  const maxG = Math.max(1, ...runs.map(r => r.offset + (r.lastStep ?? 0) + 1));
  const X = g => 6 + g / maxG * (W - room - 12), H = n * lane + 38;
  const chain = new Map(chainOf(state.leaf).map(s => [s.run, s.cut]));
  const root = svg("svg", {width: W, height: H, class: "tree-svg"});
  const axis = svg("g", {class: "axis"});
  const every = niceStep(maxG / 8);  // round ticks: 1, 2 or 5 times a power of ten
  for (let g = 0; g <= maxG; g += every) {
    const t = svg("text", {x: X(g), y: H - 18, "text-anchor": g ? "middle" : "start"});
    t.textContent = steps(g);
    axis.append(svg("line", {x1: X(g), x2: X(g), y1: 0, y2: H - 30}), t);
  }
  const name = svg("text", {x: X(maxG / 2), y: H - 3, "text-anchor": "middle", class: "axis-label"});
  name.textContent = "global step";
  axis.append(name);
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
    for (const [cs, cls] of [[r.checkpoints, "tick"], [r.abandoned, "tick abandoned"]])
      for (const c of cs) g.append(svg("line", {x1: X(r.offset + c + 0.5), x2: X(r.offset + c + 0.5),
        y1: y + 1, y2: y + lane - 1, class: cls}));
    if (r.parent != null && byId.has(r.parent)) {
      const p = byId.get(r.parent), cx = X(runs[p].offset + r.parentStep + 0.5);
      g.append(svg("path", {d: `M${cx},${p * lane + lane / 2}V${y + lane / 2}H${X(start)}`,
        stroke: r.color, fill: "none", class: "link"}));
    }
    const mark = {crashed: "\u2715", failed: "\u2715", running: "\u25b6", starting: "\u25b7"}[r.state];
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
    if (r.abandoned.length) lines.push(`abandoned (a later resume in place or rewind replaced their rows): ${r.abandoned.join(", ")}`);
    if (r.kept != null && r.kept !== r.lastStep) lines.push(`chains to leaves keep steps ${r.firstStep}\u2013${r.kept}` +
      (r.keptReplaced ? " (of the rows a later resume replaced)" : ""));
    for (const [k, v] of Object.entries(differing(i))) lines.push(`${k} = ${v}`);
    showTip(lines, e.clientX, e.clientY);
  });
  root.addEventListener("mouseleave", hideTip);
  root.addEventListener("click", e => {
    const i = Math.floor((e.clientY - root.getBoundingClientRect().top) / lane);
    if (i >= 0 && i < n) pick(runs[i].id);
  });
  treeBox.replaceChildren(root);
}
function differing(i) {  // config keys whose value is not the same in every run
  const out = {}, cfg = runs[i].config;
  for (const k of Object.keys(cfg)) if (runs.some(r => r.config[k] !== cfg[k])) out[k] = cfg[k];
  return out;
}
function rootCount() {  // "2 root(s)", and the runs just starting, which may still name a parent
  const starting = D.roots.filter(r => runs[byId.get(r)].state === "starting").length;
  return `${D.roots.length - starting} root(s)` + (starting ? `, ${starting} starting` : "");
}

