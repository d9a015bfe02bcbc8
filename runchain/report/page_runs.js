// runchain report: the runs table, and the start.
// One of the page's scripts: report/page.py joins them in order inside one function, so
// they share its names. Every string from a run reaches the DOM through textContent or
// setAttribute, never as HTML.
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
