"""The interactive report in a real browser: Debian's Chromium driven by Playwright.

Each test opens the page from ``file://`` and acts as a user would (hover, drag, click,
type), then reads what the page drew through ``window.runchain`` (its uPlot charts and
state) and through the DOM, and compares it with the chains read in Python.
"""

import io
import math
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import runchain
from foreign import append_use_artifact, run_files, scripted
from helpers import do_run, isolate, plain_run
from runchain.renderers.report import write_report


pytestmark = [pytest.mark.browser, pytest.mark.slow]  # see docs/development.md

HOSTILE = "</script><img src=x onerror=alert(1)>"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    message = "NO BROWSER: these tests need Debian's `chromium`; .ci/run installs it"
    if os.environ.get("CI"):  # never skipped in CI: a missing browser fails there
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A root, a child forked from root@19, a grandchild from child@9, a run named HOSTILE,
    and a run logging +-1e308 and a constant; the report of them all."""
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp("browser")
        wdir = isolate(mp, base)
        root = do_run("--n_steps", 40, "--n_checkpoint_steps", 10, "--n_metrics", 3, "--seed", 4)
        child = do_run("--n_steps", 30, "--n_checkpoint_steps", 10, "--n_metrics", 3,
                       "--checkpoint_artifact", f"{root}@19", "--lr", "0.05")
        grand = do_run("--n_steps", 20, "--n_checkpoint_steps", 10, "--n_metrics", 3,
                       "--checkpoint_artifact", f"{child}@9")
        hostile = plain_run(wdir, [{"loss/00": 1.0 / (i + 1)} for i in range(5)],
                            name=HOSTILE).name[4:-6]
        huge = plain_run(wdir, [{"huge": (-1) ** i * 1e308, "flat": 2.5} for i in range(6)]
                         ).name[4:-6]
        source = runchain.open_source(wdir)
        report = write_report(source, base / "report.html")
        yield {"dir": wdir, "source": source, "report": report, "root": root, "child": child,
               "grand": grand, "hostile": hostile, "huge": huge}


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=_chromium(), args=ARGS)
        yield b
        b.close()


class Opened:
    """A page with the report loaded, and everything it asked for or complained about."""

    def __init__(self, browser, path, width=1280, hash="", paused=False):
        """``paused``: the page's timers run only when the test runs the page's clock
        (``page.clock.run_for``), in this document and the ones it reloads into."""
        self.requests, self.dialogs, self.errors = [], [], []
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        if paused:  # before the page loads: its first timer already waits for the test
            now = time.time()
            self.page.clock.install(time=now)
            self.page.clock.pause_at(now + 86400)  # later than now, by far, whatever the load
        self.url = path.as_uri() + hash
        self.page.goto(self.url)
        self.page.wait_for_selector("html[data-ready]", state="attached")  # no eval: CSP

    def js(self, code, arg=None):
        return self.page.evaluate(code, arg)

    def chart_point(self, i, x, y=None):
        """Page coordinates of global step ``x`` (and value ``y``, else the middle) on chart i."""
        return self.js("""([i, x, y]) => {
            const u = runchain.charts[i], r = u.over.getBoundingClientRect();
            return [r.left + u.valToPos(x, 'x'), y == null ? r.top + r.height / 2 : r.top + u.valToPos(y, 'y')];
        }""", [i, x, y])

    def hover(self, i, x):
        self.js("(i) => runchain.charts[i].over.scrollIntoView({block: 'center'})", i)
        self.page.mouse.move(*self.chart_point(i, x))
        return self.js("(i) => runchain.charts[i].root.closest('.card').querySelector('.chart-tip')"
                       ".innerText", i)  # chart i's own card, wherever its section puts it

    def series(self, i, k):
        return self.js("([i, k]) => runchain.charts[i].data[k]", [i, k])


@pytest.fixture
def opened(browser, site):
    o = Opened(browser, site["report"])
    yield o
    assert o.errors == []
    o.page.close()


def _use_chain(opened, site, leaf):
    """Chart the chain to ``leaf``, with the metrics it logged."""
    cols = site["source"].history(leaf)
    logged = sorted(k for k in cols if k not in ("global_step", "run_id", "step"))
    opened.js("([leaf, metrics]) => { runchain.select(leaf); runchain.show(metrics); }",
              [leaf, logged[:2]])


def _rows(site, leaf, metric):
    cols = site["source"].history(leaf, keys=[metric])
    keep = np.isfinite(cols[metric])
    return cols["global_step"][keep], cols["run_id"][keep], cols["step"][keep], cols[metric][keep]


def test_hover_shows_the_rows_exact_value_run_and_steps(opened, site):
    _use_chain(opened, site, site["child"])
    metric = opened.js("runchain.charts[0].metric")
    steps, run_ids, local, values = _rows(site, site["child"], metric)
    k = int(np.flatnonzero(run_ids == site["child"])[5])  # the child's local step 5
    text = opened.hover(0, int(steps[k]))
    lines = dict(line.split(" ", 1) for line in text.splitlines()[1:])
    assert lines["run"].split()[0] == site["child"] and lines["local"] == f"step {local[k]}"
    assert lines["global"] == f"step {steps[k]}"
    assert float(lines["value"]) == values[k]  # the row's value, bit for bit
    k = int(np.flatnonzero(run_ids == site["root"])[3])  # before the resume point: the root's row
    lines = dict(line.split(" ", 1) for line in opened.hover(0, int(steps[k])).splitlines()[1:])
    assert lines["run"].split()[0] == site["root"] and float(lines["value"]) == values[k]


def test_metric_picker_switches_a_chart_to_the_metric_typed(opened, site):
    _use_chain(opened, site, site["grand"])
    metrics = opened.js("runchain.state.metrics")
    logged = site["source"].history(site["grand"])
    other = next(m for m in site["source"].metrics()
                 if m in logged and m not in metrics)
    pick = opened.page.locator(".metric-pick").first
    pick.fill(other)
    pick.press("Enter")
    assert opened.js("runchain.charts[0].metric") == other
    steps, _, _, values = _rows(site, opened.js("runchain.state.leaf"), other)
    assert opened.series(0, 0) == steps.tolist() and opened.series(0, 1) == values.tolist()
    assert opened.page.locator("#rc-metrics option").count() == len(
        site["source"].metrics())  # the picker offers every metric


def test_drag_zooms_every_chart_and_double_click_resets(opened, site):
    _use_chain(opened, site, site["grand"])
    assert opened.js("runchain.charts.length") >= 2
    full = opened.js("runchain.charts.map(u => [u.scales.x.min, u.scales.x.max])")
    lo, hi = full[0]
    a, b = lo + (hi - lo) * 0.3, lo + (hi - lo) * 0.6
    opened.page.mouse.move(*opened.chart_point(0, a))
    opened.page.mouse.down()
    opened.page.mouse.move(*opened.chart_point(0, b), steps=5)
    opened.page.mouse.up()
    zoomed = opened.js("runchain.charts.map(u => [u.scales.x.min, u.scales.x.max])")
    for x0, x1 in zoomed:
        assert [x0, x1] == zoomed[0] and abs(x0 - a) < (hi - lo) * 0.02 and abs(x1 - b) < (hi - lo) * 0.02
    opened.page.mouse.dblclick(*opened.chart_point(0, (a + b) / 2))
    assert opened.js("runchain.charts.map(u => [u.scales.x.min, u.scales.x.max])") == full


def test_log_y_and_smoothing_change_the_drawn_series_and_smoothing_zero_is_raw(opened, site):
    _use_chain(opened, site, site["grand"])
    pixels = "runchain.charts[0].data[1].map(v => v == null ? null : runchain.charts[0].valToPos(v, 'y'))"
    linear = opened.js(pixels)
    opened.page.locator(".logy").check()
    assert opened.js("runchain.charts[0].scales.y.distr") == 3
    logged = opened.js(pixels)
    assert logged != linear and all(v is None or math.isfinite(v) for v in logged)
    opened.page.locator(".logy").uncheck()
    raw = opened.series(0, 1)
    assert opened.series(0, 2) == raw  # smoothing 0: the smoothed line is the data
    opened.page.locator(".smooth").fill("0.9")
    smooth = opened.series(0, 2)
    assert opened.series(0, 1) == raw and smooth != raw
    assert np.std(np.diff(smooth)) < np.std(np.diff(raw))  # smoother
    assert opened.js("runchain.charts[0].series[1].show && runchain.charts[0].series[2].show")
    opened.page.locator(".smooth").fill("0")
    assert opened.series(0, 2) == raw


LOG_LABELS = """() => runchain.charts.filter(u => u).map(u => {
    const a = u.axes[1];  // uPlot's y axis as drawn: its ticks' values and their labels
    return a._splits.map((v, k) => [v, a._values[k], u.valToPos(v, 'y')])
                    .filter(([v, text]) => text != null && text !== '');
})"""


def _assert_log_axes_read(opened):
    """Every chart's y axis on log: ticks at powers of ten, at most 8 labels, none of them
    overlapping another (their boxes: the axis font is 12 px high)."""
    axes = opened.js(LOG_LABELS)
    assert axes and opened.js("runchain.charts.filter(u => u).every(u => u.scales.y.distr === 3)")
    for labels in axes:
        assert 2 <= len(labels) <= 8, labels
        for value, text, _ in labels:
            assert value > 0 and math.log10(value) == round(math.log10(value)), labels
            assert float(text) == pytest.approx(value, rel=1e-3), labels  # a label says its tick
        tops = sorted(pos for _, _, pos in labels)
        assert all(b - a >= 14 for a, b in zip(tops, tops[1:])), labels


def test_log_y_leaves_out_values_at_or_below_zero_and_says_so_with_readable_ticks(opened, site):
    """accuracy/* starts at 0: on log y it was a RangeError and a blank chart."""
    leaf = site["grand"]
    metrics = site["source"].metrics(leaf)
    opened.js("([leaf, metrics]) => { runchain.select(leaf); runchain.show(metrics); "
              "runchain.setLog(true); }", [leaf, metrics])
    _assert_log_axes_read(opened)
    cols = site["source"].history(leaf)
    notes = opened.js("() => runchain.charts.map(u => u && u.root.closest('.card')"
                      ".querySelector('.log-note')?.textContent)")
    for metric, note in zip(metrics, notes):
        left = int(np.sum(cols[metric] <= 0))
        assert note == (f"log y: {left} value{'s' if left != 1 else ''} \u2264 0 left out"
                        if left else None), metric
    assert any(notes)  # the demo's accuracy charts hold zeros
    lo, hi = opened.js("[runchain.charts[0].scales.x.min, runchain.charts[0].scales.x.max]")
    opened.page.mouse.move(*opened.chart_point(0, lo + (hi - lo) * 0.1))
    opened.page.mouse.down()
    opened.page.mouse.move(*opened.chart_point(0, lo + (hi - lo) * 0.2), steps=5)
    opened.page.mouse.up()
    _assert_log_axes_read(opened)
    opened.page.mouse.dblclick(*opened.chart_point(0, (lo + hi) / 2))
    _assert_log_axes_read(opened)
    opened.js("runchain.resetZoom()")
    _assert_log_axes_read(opened)
    opened.js("runchain.setYRange(0, 1e-6, 1)")  # 7 decades: no room to label each
    _assert_log_axes_read(opened)


def test_branches_follow_log_y_and_smoothing(opened, site):
    _use_chain(opened, site, site["grand"])
    raw = opened.js("runchain.branches.data.slice(1)")
    opened.js("runchain.setSmoothing(0.9)")
    smooth = opened.js("runchain.branches.data.slice(1)")
    assert smooth != raw and [len(s) for s in smooth] == [len(s) for s in raw]
    opened.js("runchain.setLog(true)")
    branches = opened.js("""(() => { const u = runchain.branches, a = u.axes[1];
        return [u.scales.y.distr, a._splits.filter((v, k) => a._values[k] !== '')]; })()""")
    assert branches[0] == 3 and 2 <= len(branches[1]) <= 8
    assert all(math.log10(v) == round(math.log10(v)) for v in branches[1])


def test_a_charts_y_range_is_set_by_hand_kept_in_the_url_and_back_to_auto(opened, browser, site):
    _use_chain(opened, site, site["grand"])
    metric = opened.js("runchain.state.metrics[0]")
    auto = opened.js("[runchain.charts[0].scales.y.min, runchain.charts[0].scales.y.max]")
    head = opened.page.locator(".card").first
    head.locator(".y-range summary").click()
    head.locator(".y-min").fill("0.1")
    head.locator(".y-min").dispatch_event("change")
    head.locator(".y-max").fill("0.5")
    head.locator(".y-max").dispatch_event("change")
    assert opened.js("[runchain.charts[0].scales.y.min, runchain.charts[0].scales.y.max]") == [0.1, 0.5]
    assert opened.js("runchain.charts[1].scales.y.min") != 0.1  # the other charts stay auto
    url = opened.page.url
    assert f"y={metric.replace('/', '%2F')}%2C0.1%2C0.5" in url
    again = Opened(browser, site["report"], hash=url[url.index("#"):])
    try:
        assert again.js("[runchain.charts[0].scales.y.min, runchain.charts[0].scales.y.max]") == [0.1, 0.5]
        assert again.js("document.querySelector('.card .y-min').value") == "0.1"
        assert again.errors == []
    finally:
        again.page.close()
    opened.js("runchain.setYRange(0, null, 0.5)")  # only the max: the min is auto again
    y_min = opened.js("runchain.charts[0].scales.y.min")
    assert y_min == auto[0] and opened.js("runchain.charts[0].scales.y.max") == 0.5
    opened.js("runchain.setYRange(0, '', '')")
    assert opened.js("[runchain.charts[0].scales.y.min, runchain.charts[0].scales.y.max]") == auto
    assert "y=" not in opened.page.url


def test_a_chain_longer_than_the_palette_keeps_its_first_runs_apart_then_draws_dashed(
        browser, tmp_path, monkeypatch):
    """24 runs in one chain (written by ``bench_read.make_deep``): its first 20 runs have 20
    colours; the 4 after repeat colours and are drawn again, dashed, and only those."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import bench_read
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "cache"))
    folder = bench_read.make_deep(tmp_path, depth=24, steps=20, metrics=1)
    source = runchain.open_source(folder)
    leaf = runchain.leaves(source.tree)[0]
    page = Opened(browser, write_report(source, tmp_path / "deep.html"))
    try:
        chain = [s.run_id for s in source.chain(leaf)]
        colors = page.js("(ids) => ids.map(id => runchain.data.runs.find(r => r.id === id).color)", chain)
        assert len(set(colors[:20])) == 20 and colors[20:] == colors[:4]
        series = page.js("""(() => { const u = runchain.charts[0];
            return u.series.slice(1).map((s, k) => [s.dash ?? null, u.data[k + 1]]); })()""")
        assert [dash for dash, _ in series] == [None, None, [6, 4], [6, 4]]
        drawn = page.js("runchain.chainData(runchain.state.leaf, runchain.state.metrics[0])")
        ids = page.js("runchain.data.runs.map(r => r.id)")
        late = {i for i, r in enumerate(drawn["run"]) if chain.index(ids[r]) >= 20}
        assert late and all((v is not None) == (i in late) for i, v in enumerate(series[2][1]))
        assert all((v is not None) == (i not in late) for i, v in enumerate(series[0][1]))
        assert page.errors == []
    finally:
        page.page.close()


def test_clicking_a_leaf_in_the_tree_map_charts_its_chain(opened, site):
    grand = site["grand"]
    _use_chain(opened, site, grand)  # charts of metrics grand's chain logged (ids are random,
    opened.js("id => runchain.select(id)", site["hostile"])  # so the default ones may not be)
    opened.page.locator(f'.tree-svg g[data-run="{grand}"] rect').last.click()
    assert opened.js("runchain.state.leaf") == grand
    metric = opened.js("runchain.charts[0].metric")
    steps, run_ids, _, values = _rows(site, grand, metric)
    assert opened.series(0, 0) == steps.tolist() and opened.series(0, 1) == values.tolist()
    chain = [s.run_id for s in site["source"].chain(grand)]
    assert opened.page.locator(".chain-path").inner_text().startswith(chain[0])
    items = opened.page.locator(".legend").first.locator(".item").all_inner_texts()
    assert [item.split()[0] for item in items] == chain


def test_tree_map_hover_names_the_run_and_marks_where_chains_cut(opened, site):
    root = site["root"]
    box = opened.page.locator(f'.tree-svg g[data-run="{root}"] rect').first.bounding_box()
    opened.page.mouse.move(box["x"] + 5, box["y"] + box["height"] / 2)
    text = opened.page.locator(".tip").inner_text()
    assert f"run {root}" in text and "state: finished" in text and "checkpoints at 9, 19, 29, 39" in text


def test_the_page_requests_nothing_but_itself(opened, site):
    _use_chain(opened, site, site["grand"])
    opened.page.locator(".smooth").fill("0.5")
    opened.hover(0, opened.js("runchain.charts[0].data[0][3]"))
    assert opened.requests == [opened.url]


def test_a_hostile_run_name_stays_text(opened, site):
    assert opened.dialogs == []
    assert opened.js("document.querySelectorAll('img').length") == 0
    assert HOSTILE in opened.page.locator("#runs ~ .runs table").inner_text()
    opened.js("id => runchain.select(id)", site["hostile"])
    assert opened.dialogs == [] and opened.js("document.querySelectorAll('img').length") == 0
    assert HOSTILE in opened.page.locator(".legend").first.inner_text()
    assert "\\u003c/script\\u003e" in site["report"].read_text(encoding="utf-8")


def test_huge_and_constant_values_are_drawn(opened, site):
    opened.js("id => runchain.select(id)", site["huge"])
    opened.js("() => { runchain.setMetric(0, 'huge'); runchain.setMetric(1, 'flat'); }")
    tops = opened.js("""() => runchain.charts.slice(0, 2).map(u =>
        u.data[1].map(v => u.valToPos(v, 'y')).concat([u.bbox.height / devicePixelRatio]))""")
    (*huge, height), (*flat, _) = tops
    assert all(0 <= y <= height for y in huge + flat)
    assert huge[1] > huge[0] + height / 2  # 1e308 high, -1e308 low, both in the plot
    assert len(set(flat)) == 1 and 0 < flat[0] < height  # a constant: a line mid-plot
    assert float(opened.hover(0, 1).splitlines()[-1].split()[-1]) == -1e308


def test_screenshots_at_two_widths_are_not_blank(browser, site, tmp_path):
    from PIL import Image
    for width in (1280, 640):
        o = Opened(browser, site["report"], width)
        png = o.page.screenshot(full_page=True)
        assert o.errors == [] and o.js("document.documentElement.scrollWidth") <= width
        o.page.close()
        pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(float) / 255
        assert pixels.shape[1] == width and pixels.shape[0] > 900
        ink = pixels.mean(axis=2) < 0.9
        assert ink.mean() > 0.02 and pixels.std() > 0.05
        colored = (pixels.max(axis=2) - pixels.min(axis=2)) > 0.3  # the runs' colours drawn
        assert colored.mean() > 0.003


# -- the dashboard: first chain, branches, hover, export, the view in the URL, the runs table

def _span(tree, root):
    """First and last global step of every run under ``root``."""
    under, lo, hi = [root], math.inf, -math.inf
    for run_id in under:
        node = tree.nodes[run_id]
        under += node.children
        first = runchain.core.lineage.first_local_step(node)
        lo = min(lo, node.global_offset + first)
        hi = max(hi, node.global_offset + (node.info.last_step if node.info.last_step is not None else first))
    return [lo, hi]


def test_the_first_chain_is_the_deepest_and_branches_span_the_whole_root(opened, site):
    tree = site["source"].tree
    assert opened.js("runchain.state.leaf") == site["grand"]  # depth 2, the others 0
    opened.js("(r) => runchain.select(r)", site["root"])  # a shorter chain: the root alone
    assert opened.js("runchain.charts[0].scales.x.max") == tree.nodes[site["root"]].info.last_step
    branches = opened.js("[runchain.branches.scales.x.min, runchain.branches.scales.x.max]")
    assert branches == _span(tree, site["root"]) == [0, 49]  # the grandchild's end, not 39
    opened.page.mouse.move(*opened.chart_point(0, 10))  # zooming the charts leaves it alone
    opened.page.mouse.down()
    opened.page.mouse.move(*opened.chart_point(0, 30), steps=5)
    opened.page.mouse.up()
    assert opened.js("runchain.charts[0].scales.x.max") < 31
    assert opened.js("[runchain.branches.scales.x.min, runchain.branches.scales.x.max]") == [0, 49]


def test_hover_shows_one_card_on_the_chart_under_the_mouse(opened, site):
    _use_chain(opened, site, site["grand"])
    assert opened.js("runchain.charts.length") >= 2
    opened.hover(1, 25)
    shown = opened.js("[...document.querySelectorAll('.grid .chart-tip')]"
                      ".map(t => getComputedStyle(t).display)")
    assert shown == ["none", "block"] + ["none"] * (len(shown) - 2)
    assert opened.js("runchain.charts[0].cursor.left") > 0  # the others show the cursor line


def test_each_chart_saves_a_png_and_the_rows_it_draws_as_csv(opened, site, tmp_path):
    _use_chain(opened, site, site["child"])
    with opened.page.expect_download() as png:
        opened.page.locator(".card .save.png").first.click()
    path = tmp_path / png.value.suggested_filename
    png.value.save_as(path)
    metric = opened.js("runchain.charts[0].metric")
    assert path.name.endswith(f"-chain-{site['child']}.png") and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000  # a picture, not an empty canvas
    with opened.page.expect_download() as csv_file:
        opened.page.locator(".card .save.csv").first.click()
    lines = Path(csv_file.value.path()).read_text().splitlines()
    assert lines[0] == f"global_step,run_id,step,{metric}"
    steps, run_ids, local, values = _rows(site, site["child"], metric)  # small runs: kept whole
    rows = [line.split(",") for line in lines[1:]]
    assert [(int(g), r, int(s), float(v)) for g, r, s, v in rows] == list(  # bit for bit
        zip(steps.tolist(), run_ids.tolist(), local.tolist(), values.tolist()))


VIEW = ("[runchain.state.leaf, runchain.state.metrics, runchain.state.smooth, runchain.state.log, "
        "runchain.charts.map(u => [u.scales.x.min, u.scales.x.max])]")  # what the URL keeps


def _set_view(opened, site):
    """Chart the child's chain, smoothed, log-y, zoomed by a drag; returns the view."""
    _use_chain(opened, site, site["child"])
    opened.js("() => { runchain.setSmoothing(0.5); runchain.setLog(true); }")
    opened.page.mouse.move(*opened.chart_point(0, 12))
    opened.page.mouse.down()
    opened.page.mouse.move(*opened.chart_point(0, 30), steps=5)
    opened.page.mouse.up()
    return opened.js(VIEW)


def test_the_url_keeps_the_view_and_opening_it_restores_it(opened, browser, site):
    view = _set_view(opened, site)
    url = opened.page.url
    assert "#view?" in url and f"chain={site['child']}" in url
    again = Opened(browser, site["report"], hash=url[url.index("#"):])
    try:
        restored = again.js(VIEW)
        assert restored[:4] == view[:4]
        assert np.ravel(restored[4]) == pytest.approx(np.ravel(view[4]), rel=1e-9)
        assert again.js("document.querySelector('.logy').checked") and again.errors == []
        again.page.click("nav a >> text=runs")  # the section links scroll; the view stays
        assert again.page.url == url
    finally:
        again.page.close()


def _table(opened):
    return opened.js("[...document.querySelectorAll('.runs tbody tr')].map(tr => tr.dataset.row)")


def test_the_runs_table_sorts_filters_and_shows_each_runs_and_chains_values(opened, site):
    _use_chain(opened, site, site["grand"])
    metric = opened.js("runchain.state.metrics[0]")
    tree = site["source"].tree
    chains = [f"chain to {leaf}" for leaf in runchain.leaves(tree)]
    assert sorted(_table(opened)) == sorted(list(tree.nodes) + chains)
    opened.page.locator(".runs th", has_text="global steps").click()
    starts = {r: n.global_offset + runchain.core.lineage.first_local_step(n) for r, n in tree.nodes.items()}
    runs_in_order = [r for r in _table(opened) if r in starts]
    assert [starts[r] for r in runs_in_order] == sorted(starts.values())
    opened.page.locator(".runs th", has_text="global steps").click()  # again: descending
    runs_in_order = [r for r in _table(opened) if r in starts]
    assert [starts[r] for r in runs_in_order] == sorted(starts.values(), reverse=True)
    opened.page.fill(".runs-filter", "chain to")
    assert sorted(_table(opened)) == sorted(chains)
    opened.page.fill(".runs-filter", "")
    headers = opened.js("[...document.querySelectorAll('.runs th')].map(th => th.textContent)")
    differs = opened.js("([row, col]) => document.querySelector(`.runs tr[data-row='${row}']`)"
                        ".children[col].textContent", [site["child"], headers.index("differs")])
    assert "lr=0.05" in differs  # what tells the child from its parent (--lr 0.05)
    col = headers.index(f"{metric} last")
    last = opened.js("([row, col]) => document.querySelector(`.runs tr[data-row='${row}']`)"
                     ".children[col].textContent", [f"chain to {site['grand']}", col])
    values = site["source"].history(site["grand"], keys=[metric])[metric]
    assert float(last) == pytest.approx(values[np.isfinite(values)][-1], rel=1e-3)
    own = site["source"].history(site["root"], keys=[metric])[metric]  # the root's own rows
    got = opened.js("([row, col]) => [...document.querySelector(`.runs tr[data-row='${row}']`)"
                    ".children].slice(col, col + 3).map(td => +td.textContent)", [site["root"], col])
    finite = own[np.isfinite(own)]
    assert got == pytest.approx([finite[-1], finite.min(), finite.max()], rel=1e-3)
    opened.page.locator(f".runs tr[data-row='{site['child']}']").click()  # a row charts its chain
    assert opened.js("runchain.state.leaf") == site["child"]


def test_the_runs_table_shows_the_metric_columns_chosen_in_rows_one_line_high(opened, site):
    _use_chain(opened, site, site["grand"])
    headers = lambda: opened.js(  # noqa: E731
        "[...document.querySelectorAll('.runs th')].map(th => th.textContent.replace(/ [\u25b2\u25bc]$/, ''))")
    charted = opened.js("runchain.state.metrics")
    metric_cols = lambda: [h for h in headers() if h.endswith((" last", " min", " max"))]  # noqa: E731
    assert metric_cols() == [f"{m} {w}" for m in charted for w in ("last", "min", "max")]
    other = next(m for m in site["source"].metrics() if m not in charted)
    opened.page.locator(".metric-cols summary").click()
    opened.page.locator(f".metric-cols input[value='{charted[0]}']").uncheck()
    opened.page.locator(f".metric-cols input[value='{other}']").check()
    want = [m for m in site["source"].metrics() if m in (set(charted[1:]) | {other})]
    assert metric_cols() == [f"{m} {w}" for m in want for w in ("last", "min", "max")]
    opened.js("runchain.show([runchain.state.metrics[0]])")  # a choice outlives the charts
    assert metric_cols() == [f"{m} {w}" for m in want for w in ("last", "min", "max")]
    opened.page.locator(".metric-cols .charted").click()  # back to the charted ones
    assert metric_cols() == [f"{opened.js('runchain.state.metrics[0]')} {w}" for w in ("last", "min", "max")]
    heights = opened.js("[...document.querySelectorAll('.runs tbody tr')].map(tr => tr.offsetHeight)")
    line = opened.js("parseFloat(getComputedStyle(document.querySelector('.runs td')).lineHeight) || 16")
    assert max(heights) < 2 * line  # every row one line
    cut = opened.js("""[...document.querySelectorAll('.runs td')].filter(td => td.scrollWidth > td.clientWidth + 1)
                       .map(td => [td.title, td.textContent])""")
    assert cut and all(title == text for title, text in cut)  # a cut cell is whole on hover
    assert any("</script>" in title for title, _ in cut)  # the hostile run's long name


def _cards(opened):
    """(section, metrics of its cards) in page order."""
    return opened.js("[...document.querySelectorAll('.metric-section')].map(s => [s.dataset.group, "
                     "[...s.querySelectorAll('.metric-pick')].map(i => i.value)])")


def test_the_default_view_charts_every_metric_in_a_section_per_group(opened, site):
    every = site["source"].metrics()
    assert opened.js("runchain.state.metrics") == every
    groups = {}
    for m in every:
        groups.setdefault(m.split("/")[0] if "/" in m else "", []).append(m)
    want = [[g, ms] for g, ms in groups.items() if g] + [["", groups[""]]]  # ungrouped last
    assert _cards(opened) == want
    opened.js("window.scrollTo(0, document.body.scrollHeight)")  # the rest are drawn when near
    opened.page.wait_for_timeout(300)
    logged = site["source"].metrics(site["grand"])
    drawn = opened.js("runchain.charts.filter(c => c).map(c => c.metric)")
    assert sorted(drawn) == sorted(logged)
    opened.page.locator(".section-head", has_text="loss").click()  # collapsed: no charts
    assert opened.js("document.querySelector('.metric-section[data-group=loss] .section-head')"
                     ".getAttribute('aria-expanded')") == "false"
    assert dict((g, ms) for g, ms in _cards(opened))["loss"] == []


def test_search_charts_by_regex_or_glob_and_add_charts_by_glob(opened, site):
    opened.page.fill(".chart-search", "loss/*")  # a glob: whole names
    assert _cards(opened) == [["loss", ["loss/00"]]]
    opened.page.fill(".chart-search", "OSC|acc")  # else a regex, in any case
    assert _cards(opened) == [["accuracy", ["accuracy/01"]], ["oscillation", ["oscillation/02"]]]
    opened.page.fill(".chart-search", "")
    opened.js("runchain.show(['flat'])")
    opened.page.fill(".add-metric", "*/0?")
    opened.page.press(".add-metric", "Enter")
    assert opened.js("runchain.state.metrics") == ["flat", "accuracy/01", "loss/00", "oscillation/02"]


def test_compare_overlays_chains_each_in_its_colour_drawing_shared_rows_once(opened, site):
    grand, child, root = site["grand"], site["child"], site["root"]
    opened.js("([leaf, m]) => { runchain.select(leaf); runchain.show([m]); }", [grand, "loss/00"])
    opened.page.select_option(".compare-pick", site["hostile"])  # the picker offers leaves
    assert opened.js("runchain.state.compare") == [site["hostile"]]
    opened.js("(c) => runchain.compare([c])", child)  # any run's chain: root@19 -> child, whole
    assert opened.js("runchain.state.compare") == [child] and f"vs={child}" in opened.page.url
    lines = opened.js("runchain.charts[0].lines")
    assert [line.split(" (")[0] for line in lines] == [
        f"shared: run {root}", f"shared: run {child}", f"chain to {grand}", f"chain to {child}"]
    drawn = opened.js("(() => { const u = runchain.charts[0]; return u.data.slice(1).map(s => "
                      "u.data[0].map((x, i) => [x, s[i]]).filter(p => p[1] != null)); })()")
    points = {line: {(x, y) for x, y in pts} for line, pts in zip(lines, drawn)}
    g_steps, g_runs, _, g_values = _rows(site, grand, "loss/00")  # grand's chain keeps the
    c_steps, c_runs, c_local, c_values = _rows(site, child, "loss/00")  # child to its step 9
    shared = {(x, y) for x, r, y in zip(g_steps.tolist(), g_runs.tolist(), g_values.tolist()) if r != grand}
    assert set().union(*(points[line] for line in lines[:2])) == shared  # once, in dark grey
    assert points[lines[2]] == {(x, y) for x, r, y in zip(g_steps.tolist(), g_runs.tolist(),
                                                          g_values.tolist()) if r == grand}
    assert points[lines[3]] == {(x, y) for x, r, s, y in zip(c_steps.tolist(), c_runs.tolist(),
                                                             c_local.tolist(), c_values.tolist())
                                if r == child and s > 9}
    colors = opened.js("runchain.charts[0].series.slice(1).map(s => s._stroke ?? s.stroke)")
    assert colors[0] == colors[1] != colors[2] != colors[3]  # chains differ; shared rows alike
    with opened.page.expect_download() as csv_file:  # every compared chain's rows, once each
        opened.page.locator(".card .save.csv").first.click()
    lines = Path(csv_file.value.path()).read_text().splitlines()
    assert lines[0] == "chain,global_step,run_id,step,loss/00"
    assert len(lines) == 1 + len(g_steps) + len(c_steps)
    assert {line.split(",")[0] for line in lines[1:]} == {grand, child}
    text = opened.hover(0, 40)  # past the cut at the child's step 9 (global 29): two chains
    assert text.splitlines()[1].startswith("chain to ")
    opened.page.locator(".chips .remove").click()
    assert opened.js("runchain.state.compare") == [] and opened.js("runchain.charts[0].lines") is None


def test_hover_on_compared_chains_lists_every_chain_with_its_value_run_and_steps(opened, site):
    """With 3 chains compared, the card names each: its value at the cursor's global step,
    its run and that run's local step; the chain of the line under the mouse first."""
    grand, child, hostile = site["grand"], site["child"], site["hostile"]
    opened.js("([leaf, m, vs]) => { runchain.select(leaf); runchain.show([m]); runchain.compare(vs); }",
              [grand, "loss/00", [child, hostile]])
    at = 35  # grand's chain: root to 19, child to 29 (local 9), grand from 30; child's own
    entries = opened.js("(x) => runchain.hoverAt(0, x)", at)
    want = []
    for leaf in (grand, child, hostile):
        g, r, local, v = _rows(site, leaf, "loss/00")
        k = int(np.searchsorted(g, at, side="right")) - 1  # the last row at or before it
        want.append({"chain": leaf, "value": float(v[k]), "run": str(r[k]), "step": int(local[k]),
                     "global": int(g[k]), "x": int(g[k])})  # x on the page's axis: global
    assert entries == want
    assert entries[0]["run"] == grand and entries[1]["run"] == child and entries[1]["step"] == 35 - 20
    text = opened.hover(0, at)  # the card shows them all, each chain with its run and step
    blocks = text.splitlines()[1:]
    assert len(blocks) == 6 and sum(line.startswith("chain to ") for line in blocks) == 3
    for e in entries:
        assert any(f"run {e['run']}" in line and f"local step {e['step']}," in line
                   for line in blocks), (e, text)


@pytest.fixture(scope="module")
def axes_site(tmp_path_factory):
    """Plain wandb runs logging ``tokens`` and ``epoch`` on every row: a root of 30 rows
    saving checkpoints at steps 9 and 19; child A resumed from 19, logging both; child B
    from 9, logging neither. The report of the three."""
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp("axes")
        wdir = isolate(mp, base)
        root = scripted(wdir, "axes", 30, also={"tokens": [512, 512], "epoch": [0.0, 0.1]},
                        saves=[{"at": 9, "type": "checkpoint", "name": "ck"},
                               {"at": 19, "type": "checkpoint", "name": "ck"}])
        a = scripted(wdir, "axes", 20, base=100.0,
                     also={"tokens": [512 * 21, 512], "epoch": [2.0, 0.1]})
        append_use_artifact(run_files(wdir, a)[-1], "ck:step-19")
        b = scripted(wdir, "axes", 10, base=200.0)
        append_use_artifact(run_files(wdir, b)[-1], "ck:step-9")
        source = runchain.open_source(wdir)
        assert source.tree.notes == () and source.tree.nodes[a].parent_step == 19
        yield {"source": source, "report": write_report(source, base / "axes.html"),
               "root": root, "A": a, "B": b}


def test_each_x_axis_starts_and_ends_the_chain_where_its_rows_do(browser, axes_site):
    """The global step, each run's local step, wall time, relative time (hours since the
    chain's first row, the time between runs left out) and a metric logged on every row:
    on each, the chain's first and last x are its rows', and resume lines sit where the
    child's rows start (local step: where the parent was cut)."""
    o = Opened(browser, axes_site["report"])
    try:
        a, root = axes_site["A"], axes_site["root"]
        o.js("([leaf]) => { runchain.select(leaf); runchain.show(['loss']); }", [a])
        cols = axes_site["source"].history(a, keys=["loss", "_timestamp", "tokens"])
        t, run_id, local = cols["_timestamp"], cols["run_id"], cols["step"]
        first = {r: int(np.flatnonzero(run_id == r)[0]) for r in (root, a)}
        last = {r: int(np.flatnonzero(run_id == r)[-1]) for r in (root, a)}
        hours = sum(t[last[r]] - t[first[r]] for r in (root, a)) / 3600
        want = {"global": ([0, 39], [20]), "local": ([0, 19], [19]),
                "wall": ([t[0], t[-1]], [t[first[a]]]),
                "relative": ([0, hours], [(t[last[root]] - t[0]) / 3600]),
                "tokens": ([512, 512 * 40], [512 * 21])}
        assert o.js("runchain.state.xAxis") == "global"
        for axis, ((lo, hi), cuts) in want.items():
            assert o.js("(n) => runchain.setXAxis(n)", axis) == axis
            xs = o.js("runchain.charts[0].chainX")  # each point's x, in chain order
            label = o.js("runchain.charts[0].axes[0].label")
            assert label == {"global": "global step", "local": "local step", "wall": "wall time",
                             "relative": "relative time"}.get(axis, axis)
            if axis == "local":  # x goes back at the resume: one line per run
                assert xs[:20] == list(range(20)) and xs[20:] == list(range(20))
                assert len(o.js("runchain.charts[0].series")) == 1 + 2 * 2
            else:
                assert xs == sorted(xs) and len(o.js("runchain.charts[0].series")) == 3
            assert xs[0] == pytest.approx(lo, abs=1e-6) and max(xs) == pytest.approx(hi, abs=1e-6)
            assert o.js("runchain.cutsOf(0)") == pytest.approx(cuts, abs=1e-6), axis
            assert f"xaxis={axis}" in o.page.url or axis == "global"
        # the scale spans the chain; hover names the row and its x
        o.js("runchain.setXAxis('tokens')")
        assert o.js("[runchain.charts[0].scales.x.min, runchain.charts[0].scales.x.max]") == [512, 512 * 40]
        card = o.hover(0, 512 * 25)
        assert f"run {a}" in card and "local step 4" in card and "tokens 12800" in card
        # a reload keeps the axis; a chain that did not log tokens on every row says so
        o.page.reload(); o.page.wait_for_selector("html[data-ready]", state="attached")
        assert o.js("[runchain.state.xAxis, runchain.charts[0].axes[0].label]") == ["tokens"] * 2
        o.js("(b) => runchain.select(b)", axes_site["B"])
        assert o.js("runchain.charts[0].axes[0].label") == "global step"
        assert "tokens is not logged on every row of this chain" in o.page.inner_text(".x-note")
        assert o.js("runchain.branches.axes[0].label") == "global step"  # B's root has it not
        assert o.errors == []
    finally:
        o.page.close()


def test_compared_chains_and_branches_share_the_x_axis(browser, axes_site):
    """Compare and branches draw on the page's axis; on the local step each run is its own
    line, and the hover card gives each chain's row at that x."""
    o = Opened(browser, axes_site["report"])
    try:
        a, b, root = axes_site["A"], axes_site["B"], axes_site["root"]
        o.js("([a, b]) => { runchain.select(a); runchain.show(['loss']); runchain.compare([b]);"
             " runchain.setXAxis('relative'); }", [a, b])
        assert o.js("runchain.charts[0].axes[0].label") == "relative time"
        xs = o.js("runchain.charts[0].data[0]")
        assert xs == sorted(xs) and xs[0] == 0
        o.js("runchain.setXAxis('local')")
        entries = o.js("runchain.hoverAt(0, 5)")  # A's chain: root rows 0-19, A's from 0
        assert [(e["chain"], e["x"]) for e in entries] == [(a, 5), (b, 5)]
        assert {e["run"] for e in entries} == {a, b} and all(e["step"] == 5 for e in entries)
        assert o.js("runchain.branches.axes[0].label") == "local step"
        assert o.errors == []
    finally:
        o.page.close()


def test_a_watched_report_reloads_itself_keeping_its_view_and_asking_no_network(browser, site):
    """``runchain report --watch`` writes a page that reloads from its file; the view (chain,
    metrics, smoothing, log, zoom) lives in the URL, so it survives the reload."""
    live = write_report(site["source"], site["report"].with_name("live.html"), reload=1.0)
    # The page's clock waits for the test: a reload due while the test reads the page would
    # destroy what it reads ("Execution context was destroyed"), on a machine slow enough.
    opened = Opened(browser, live, paused=True)
    try:
        assert "live: written at" in opened.js("document.querySelector('.live').innerText")
        view = _set_view(opened, site)
        opened.js("() => { window.beforeReload = true; }")
        opened.page.clock.run_for(999)  # not yet
        assert opened.js("window.beforeReload") is True
        with opened.page.expect_navigation():  # the page's own timer reloads it, and it loads
            opened.page.clock.run_for(1)
        opened.page.wait_for_selector("html[data-ready]", state="attached")
        assert opened.js("window.beforeReload === undefined")  # a new document, not the old one
        restored = opened.js(VIEW)
        assert restored[:4] == view[:4]
        assert np.ravel(restored[4]) == pytest.approx(np.ravel(view[4]), rel=1e-9)
        assert set(opened.requests) == {opened.page.url.split("#")[0]} and opened.errors == []
    finally:
        opened.page.close()


def test_a_watched_report_follows_the_newest_run_and_never_counts_a_starting_one_as_a_root(
        browser, site, tmp_path, monkeypatch):
    """With no chain in the URL, "follow newest" is on: a run that starts during the watch
    becomes the charted chain at the next reload. Its file names no parent yet, so it is
    "starting", not a root. Choosing a chain turns following off."""
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "wandb"
    shutil.copytree(site["dir"], copy)
    live = tmp_path / "live.html"
    write_report(runchain.open_source(copy), live, reload=1.0)
    opened = Opened(browser, live, paused=True)
    try:
        newest = max(runchain.leaves(runchain.open_source(copy).tree),
                     key=lambda l: runchain.open_source(copy).tree.nodes[l].info.started)
        assert opened.js("[runchain.state.follow, document.querySelector('.follow').checked]") == [True, True]
        assert opened.js("runchain.state.leaf") == newest
        roots = len(runchain.open_source(copy).tree.roots)
        path = plain_run(copy, [{"loss/00": 1.0 / (i + 1)} for i in range(5)])  # a run starts
        path.write_bytes(path.read_bytes()[:-100])  # still being written: no exit record yet
        shutil.rmtree(path.parent / "logs")  # no writer to ask: its fresh file says running
        started = path.name[4:-6]
        source = runchain.open_source(copy)
        assert source.tree.nodes[started].info.state == "starting"
        write_report(source, live, reload=1.0)
        with opened.page.expect_navigation():
            opened.page.clock.run_for(1000)
        opened.page.wait_for_selector("html[data-ready]", state="attached")
        assert opened.js("runchain.state.leaf") == started
        header = opened.js("document.querySelector('header .meta, .meta').innerText")
        assert f"{roots} root(s), 1 starting" in header
        opened.page.select_option(".chain-pick", newest)  # the user's choice: following stops
        assert opened.js("[runchain.state.follow, runchain.state.leaf]") == [False, newest]
        assert "follow=0" in opened.page.url and opened.errors == []
    finally:
        opened.page.close()


def test_a_run_resumed_in_place_is_drawn_from_its_own_rows_and_its_childs_chain_from_the_old(
        browser, tmp_path, monkeypatch):
    """root logs 0-39 and saves root@29; a child starts from root@29; root is then resumed in
    place from root@9 with other rows. root's chain draws its rows as they stand, the child's
    chain root's rows as they were at root@29, and comparing them keeps both."""
    wdir = isolate(monkeypatch, tmp_path)
    root = do_run("--n_steps", 40, "--n_checkpoint_steps", 10, "--n_metrics", 2)
    child = do_run("--checkpoint_artifact", f"{root}@29", "--n_steps", 10)
    do_run("--run_id", root, "--checkpoint_artifact", f"{root}@9", "--n_steps", 40, "--seed", 7)
    source = runchain.open_source(wdir)
    opened = Opened(browser, write_report(source, tmp_path / "report.html"))
    try:
        drawn = {}
        for run_id in (root, child):
            cols = source.history(run_id, keys=["loss/00"])
            keep = np.isfinite(cols["loss/00"])
            data = opened.js("(id) => runchain.chainData(id, 'loss/00')", run_id)
            assert data["x"] == cols["global_step"][keep].tolist()
            assert data["y"] == cols["loss/00"][keep].tolist()  # bit for bit, every row
            drawn[run_id] = dict(zip(data["x"], data["y"]))
        assert drawn[root][20] != drawn[child][20]  # root's step 20, before and after the resume
        opened.js("([leaf, other]) => { runchain.select(leaf); runchain.show(['loss/00']);"
                  " runchain.compare([other]); }", [child, root])
        lines = opened.js("runchain.charts[0].lines")
        series = opened.js("(() => { const u = runchain.charts[0]; return u.data.slice(1).map(s => "
                           "u.data[0].map((x, i) => [x, s[i]]).filter(p => p[1] != null)); })()")
        points = {line.split(" (")[0]: {x: y for x, y in pts} for line, pts in zip(lines, series)}
        assert points[f"chain to {root}"][20] == drawn[root][20]
        assert points[f"chain to {child}"][20] == drawn[child][20]  # the old rows, not shared
        # root's steps 0-9, before the resume took over, are the same rows in both: drawn once
        assert points[f"shared: run {root}"] == {x: drawn[root][x] for x in range(10)}
        assert min(points[f"chain to {root}"]) == min(points[f"chain to {child}"]) == 10
        dashed = opened.js("[...document.querySelectorAll('.tree-svg g[data-run] .tick.abandoned')]"
                           ".map(t => t.closest('g').dataset.run)")
        assert dashed == [root] * 3  # root@19, 29, 39: saved in the rows the resume replaced
        box = opened.page.locator(f'.tree-svg g[data-run="{root}"] rect').first.bounding_box()
        opened.page.mouse.move(box["x"] + 5, box["y"] + box["height"] / 2)
        tip = opened.page.locator(".tip").inner_text()
        assert "abandoned (a later resume in place or rewind replaced their rows): 19, 29, 39" in tip
        assert "keep steps 0\u201329 (of the rows a later resume replaced)" in tip
        assert opened.errors == []
    finally:
        opened.page.close()
