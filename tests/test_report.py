"""runchain report (interactive and --static) and runchain publish on a real offline tree.

The interactive page in a real browser: test_report_browser.py."""

import base64
import csv
import dataclasses
import json
import re

import numpy as np
import pytest
from wandb.proto import wandb_internal_pb2 as pb

import runchain
from helpers import cli, isolate, plain_run, pooled, runchain_process, script
from runchain.readers.record_log import read_run_file, record_kind, scan_records
from runchain.renderers.report import build_report, write_report
from runchain.renderers.report.data import pieces_of, read_pieces, shown_where, thin
from runchain.renderers.report.palette import PALETTE


pytestmark = pytest.mark.slow  # see docs/development.md

XSS = "<img src=x onerror=alert(1)>"
BAD_METRIC = "<b>m</b>&'\""


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """do_many's tree (5 runs, its report written by do_many) plus a plain run named XSS."""
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp("report")
        wdir = isolate(mp, base)
        out = script("do_many.py", "--n_runs", 5, "--n_steps", 60, "--n_checkpoint_steps", 20,
                     "--n_metrics", 4, "--seed", 2).stdout
        plain = plain_run(wdir, [{"loss": 1.0 - i / 10, BAD_METRIC: float(i)} for i in range(6)],
                          name=XSS).name[4:-6]
        report = base / "report.html"
        cli("report", "--dir", wdir, "-o", report)
        static = write_report(runchain.open_source(wdir), base / "static.html", static=True)
        yield {"dir": wdir, "base": base, "do_many_out": out, "plain": plain, "report": report,
               "html": report.read_text(encoding="utf-8"),
               "static": static.read_text(encoding="utf-8")}


def _data(page: str) -> dict:
    """The JSON the interactive page draws from."""
    match = re.search(r'<script type="application/json" id="runchain-data">(.*?)</script>', page, re.S)
    return json.loads(match[1])


def test_do_many_ends_by_writing_the_report_and_printing_its_path(demo):
    written = demo["base"] / "runchain-report.html"
    assert written.is_file() and f"report: {written}" in demo["do_many_out"]
    assert 'id="runchain-data"' in written.read_text(encoding="utf-8")


def test_do_many_no_report_skips_it(tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path)
    out = script("do_many.py", "--n_runs", 1, "--n_steps", 5, "--n_metrics", 2, "--no-report").stdout
    assert not (tmp_path / "runchain-report.html").exists() and "report:" not in out


def test_static_sections_in_order_with_every_picture_embedded(demo):
    page = demo["static"]
    positions = [page.index(f"<h2 id={s}>") for s in ("tree", "chains", "branches", "runs")]
    assert positions == sorted(positions)
    src = runchain.open_source(demo["dir"])
    leaves = runchain.leaves(src.tree)
    images = re.findall(r'<img alt="[^"]*" src="([^"]*)"', page)
    assert len(images) == 1 + len(leaves) + len(src.tree.roots)  # tree, chains, fans
    for uri in images:
        assert uri.startswith("data:image/png;base64,")
        png = base64.b64decode(uri.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        assert tuple(_pixels(png)[0, 0]) == (255, 255, 255)  # white as the page: no grey box
    for run_id in src.tree.nodes:  # every run in the table
        assert f"<code>{run_id}</code>" in page


def test_every_user_string_is_escaped(demo, tmp_path):
    page = demo["html"]  # interactive: JSON with <, >, & escaped, for textContent in the page
    assert XSS not in page and BAD_METRIC not in page
    assert "\\u003cimg src=x onerror=alert(1)\\u003e" in page
    data = _data(page)
    assert XSS in [run["name"] for run in data["runs"]] and BAD_METRIC in data["metrics"]
    assert "innerHTML" not in page and "insertAdjacentHTML" not in page and "document.write" not in page
    static = demo["static"]
    assert XSS not in static and "&lt;img src=x onerror=alert(1)&gt;" in static
    source = runchain.open_source(demo["dir"])
    text = build_report(source, [BAD_METRIC], [demo["plain"]], static=True)
    assert BAD_METRIC not in text and "&lt;b&gt;m&lt;/b&gt;&amp;&#x27;&quot;" in text
    text = build_report(source, [BAD_METRIC], [demo["plain"]])
    assert BAD_METRIC not in text and _data(text)["shown"] == [BAD_METRIC]


def test_script_json_escapes_what_could_end_the_element():
    from runchain.renderers.report.data import script_json
    value = {"name": "</script><!--\u2028\u2029&"}
    text = script_json(value)
    assert not re.search("[<>&\u2028\u2029]", text) and json.loads(text) == value


def test_nothing_external_is_referenced(demo):
    for page in (demo["html"], demo["static"]):
        # a CSS url(...) (not the page's own URL.createObjectURL, for its PNG and CSV buttons)
        assert not re.search(r"<link|<iframe|<object|@import|\burl\(|<script[^>]*\bsrc", page, re.I)
        assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:|//|ftp:)", page, re.I)
    assert "http" not in demo["static"]  # a local source has no W&B links either
    assert "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; " in demo["html"]
    assert "Copyright (c) 2022 Leon Sorokin" in demo["html"]  # uPlot's license, inlined with it


def test_a_w_and_b_source_links_each_run_to_its_page(demo):
    from runchain.readers.from_project import open_project
    from wandb_standin import StandinApi, project_from_dir
    runs = [d for d in project_from_dir(demo["dir"]) if d.project == "runchain-demo"]
    source = open_project("ent/runchain-demo", api=StandinApi(runs))
    static = build_report(source, static=True)
    urls = {run["id"]: run["url"] for run in _data(build_report(source))["runs"]}
    assert urls == dict(source.urls) and len(urls) == 5
    for run_id, url in source.urls.items():
        assert f'<a href="{url}">open</a>' in static and url.startswith("https://")
    assert not re.search(r"(src)\s*=\s*[\"']?\s*(https?:|//)", static)  # links, never loads


def test_the_report_never_names_an_absolute_path(demo, tmp_path, monkeypatch):
    """A report is shared: it names the folder relative to where it was made, or by its name."""
    wdir = demo["dir"]
    for static in (False, True):
        monkeypatch.chdir(demo["base"])  # the folder is under the current directory
        page = build_report(runchain.open_source(wdir), static=static)
        assert str(demo["base"]) not in page and "wandb_dir/wandb" in page
        monkeypatch.chdir(tmp_path)  # it is elsewhere
        page = build_report(runchain.open_source(wdir), static=static)
        assert str(demo["base"]) not in page and str(wdir.parent) not in page
    assert shown_where(str(wdir)) == "wandb" and shown_where("ent/proj") == "ent/proj"


def test_huge_and_constant_metrics_are_drawn_in_both_reports(wandb_dir, tmp_path):
    """+-1e308 used to overflow the static report's axis limits into a matplotlib traceback."""
    plain_run(wandb_dir, [{"huge": (-1) ** i * 1e308, "flat": 2.5} for i in range(6)])
    source = runchain.open_source(wandb_dir)
    static = build_report(source, static=True)
    assert static.count("<img ") == 3  # tree map, the chain, its fan
    pictures = re.findall(r'src="data:image/png;base64,([^"]*)"', static)
    for uri in pictures[1:]:
        assert _pixels(base64.b64decode(uri)).std() > 10  # drawn, not blank
    data = _data(build_report(source))
    assert data["shown"] == ["flat", "huge"]
    (run,) = data["runs"]
    values = {m: np.frombuffer(base64.b64decode(s[1]), "<f8").tolist()
              for m, s in zip(data["metrics"], run["series"][0])}
    assert values == {"flat": [2.5] * 6, "huge": [(-1) ** i * 1e308 for i in range(6)]}


def test_thin_keeps_each_buckets_extremes_and_the_ends():
    rng = np.random.default_rng(0)
    values = rng.normal(size=10_000)
    values[1234], values[8765] = 50.0, -50.0  # one-step spikes
    values[::7] = np.nan  # rows that did not log the metric
    steps, kept = thin(np.arange(10_000), values, 200)
    assert len(kept) <= 200 and 50.0 in kept and -50.0 in kept
    assert steps[0] == 1 and steps[-1] == 9999 and np.all(np.diff(steps) > 0)
    assert np.array_equal(kept, values[steps])
    few = np.array([1.0, np.inf, 3.0])
    assert thin(np.arange(3), few, 200)[1].tolist() == [1.0, 3.0]  # whole, but no inf


def test_each_run_segment_is_embedded_once_and_chains_are_put_together_exactly(demo):
    source = runchain.open_source(demo["dir"])
    data = _data(demo["html"])
    assert data["metrics"] == source.metrics()
    runs = {run["id"]: run for run in data["runs"]}
    assert list(runs) == list(source.tree.nodes)
    for run_id, run in runs.items():  # a piece per stretch between the steps children started at
        assert run["pieces"] == [list(p) for p in pieces_of(source.tree.nodes[run_id], source.tree)]
        assert len(run["series"]) == len(run["pieces"])
    _assert_chains_put_together(source, data, runs)
    assert [run["color"] for run in data["runs"]] == PALETTE[:len(runs)]


def _assert_chains_put_together(source, data: dict, runs: dict) -> None:
    """The chain to every run (a leaf's, and an inner run's own rows whole), put together
    from the embedded pieces as the page does, is the chain's stitched history exactly
    (every row: the pieces are not thinned here)."""
    metric = data["metrics"][0]
    k = data["metrics"].index(metric)
    for leaf in source.tree.nodes:
        cols = source.history(leaf, keys=[metric])
        steps, values = [], []
        for seg in source.chain(leaf):  # as the page does: the pieces up to each cut, of the
            run = runs[seg.run_id]  # timeline the chain keeps, which below its sharedBelow
            kept = [(run, seg.last_step)]  # holds the rows as they stand
            if seg.timeline is not None:
                old = run["timelines"][str(seg.timeline)]
                kept = [(run, min(seg.last_step, old["sharedBelow"] - 1)), (old, seg.last_step)]
            for track, cut in kept:
                for (first, last), series in zip(track["pieces"], track["series"]):
                    if (cut is None or last <= cut) and series[k]:
                        steps += (np.frombuffer(base64.b64decode(series[k][0]), "<i4")
                                  + seg.global_offset).tolist()
                        values += np.frombuffer(base64.b64decode(series[k][1]), "<f8").tolist()
        keep = np.isfinite(cols[metric])
        assert steps == cols["global_step"][keep].tolist() and values == cols[metric][keep].tolist()


def test_a_chain_through_an_abandoned_checkpoint_gets_that_timeline_s_rows(wandb_dir):
    """The report reads each run's rows once, not each chain whole: a child forked from a
    checkpoint that a later resume in place abandoned still gets the rows it was saved after."""
    from helpers import do_run
    root = do_run("--n_steps", "40", "--n_checkpoint_steps", "10", "--n_metrics", "2")
    child = do_run("--checkpoint_artifact", f"{root}@29", "--n_steps", "10")
    do_run("--run_id", root, "--checkpoint_artifact", f"{root}@9", "--n_steps", "40", "--seed", "7")
    grandchild = do_run("--checkpoint_artifact", f"{child}@9", "--n_steps", "5")
    source = runchain.open_source(wandb_dir)
    assert [s.run_id for s in source.chain(grandchild)] == [root, child, grandchild]
    assert source.chain(child)[0].timeline is not None  # root@29 is in root's first timeline
    data = _data(build_report(source))
    runs = {run["id"]: run for run in data["runs"]}
    _assert_chains_put_together(source, data, runs)  # root's own chain: its rows as they stand
    assert runs[child]["parentTimeline"] == source.chain(child)[0].timeline
    (old,) = runs[root]["timelines"].values()  # the abandoned timeline, from where the
    assert old["pieces"] == [[10, 29]] and old["sharedBelow"] == 10  # resume took over to
    assert runs[root]["pieces"][0] == [0, 9]  # the child's cut; below it, root's own rows
    assert (runs[root]["checkpoints"], runs[root]["abandoned"]) == ([9, 49], [19, 29, 39])
    assert runs[root]["kept"] == 29 and runs[root]["keptReplaced"]
    # a child of the abandoned checkpoint with no rows yet (just started, as --watch sees
    # it) still gets root's abandoned rows: only its chain reaches them
    just_started = [dataclasses.replace(i, last_step=None) if i.id == child else i
                    for i in source.runs if i.id != grandchild]
    pieces = read_pieces(dataclasses.replace(source, runs=just_started), data["metrics"])
    assert pieces[root, source.chain(child)[0].timeline]["series"] == old["series"]
    static = build_report(source, static=True)  # its fan draws root both ways
    assert f"chains from {root}" in static and "<td>9, 49  abandoned 19, 29, 39</td>" in static


def _chain(low: float, high: float, n: int = 20) -> dict:
    """A chain of runs a (steps 0-9) and b (10 on), where m goes from low to high."""
    return {"global_step": np.arange(n), "run_id": np.array(["a"] * 10 + ["b"] * (n - 10)),
            "step": np.r_[np.arange(10), np.arange(n - 10)], "m": np.linspace(low, high, n),
            "gone": np.full(n, np.nan)}


SEGMENTS = [runchain.Segment("a", 9, 0), runchain.Segment("b", None, 10)]
COLORS = {"a": "#0000ff", "b": "#ff0000"}


def test_chains_drawn_together_share_a_scale_that_fits_them_all():
    from runchain.renderers.report.figures import chain_scale
    short, long = _chain(5.0, 7.0, n=20), _chain(-3.0, 2.0, n=50)
    long["m"][7] = np.nan  # a row that did not log m
    (x0, x1), ((m0, m1), (g0, g1)) = chain_scale([short, long], ["m", "gone"])
    assert x0 < 0 and 49 < x1 < 52  # the longer chain's steps, padded
    assert -3.5 < m0 < -3.0 and 7.0 < m1 < 7.5  # both chains' values; NaN ignored
    assert (g0, g1) == (0.0, 1.0)  # logged by neither chain
    (x0, x1), _ = chain_scale([short], ["m"])
    assert 19 < x1 < 21  # a chain drawn alone gets its own scale


def _pixels(png: bytes) -> np.ndarray:
    import io
    from PIL import Image
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)


def _primary(image: np.ndarray, channel: int) -> np.ndarray:
    """Where ``image`` is close to pure red (0), green (1) or blue (2)."""
    others = [c for c in range(3) if c != channel]
    return (image[..., channel] > 200) & (image[..., others] < 80).all(axis=-1)


def _region(ax, height: int) -> tuple[slice, slice]:
    """The rows and columns of ``ax`` in a picture ``height`` pixels tall."""
    box = ax.get_window_extent()
    return slice(int(height - box.y1), int(height - box.y0)), slice(int(box.x0), int(box.x1))


def test_chain_picture_draws_each_run_where_its_data_is():
    from runchain.renderers.report.figures import ChainCanvas, chain_scale
    flat = _chain(5.0, 5.0)
    scale = chain_scale([flat, _chain(0.0, 10.0)], ["m", "gone"])
    canvas = ChainCanvas(["m", "gone"])
    png = canvas.draw("b", SEGMENTS, flat, COLORS, scale)
    assert png[:4] == b"\x89PNG"
    image = _pixels(png)
    height = image.shape[0]
    shown, gone = canvas.axes
    assert shown.get_ylim() == scale[1][0] and shown.get_xlim() == scale[0]
    red, blue = _primary(image, 0), _primary(image, 2)
    rows, cols = np.nonzero(red)
    (left, y5), (right, _) = shown.transData.transform([(10, 5.0), (19, 5.0)])
    assert abs(np.median(rows) - (height - y5)) <= 2  # run b's flat line at m = 5
    assert cols.min() >= left - 2 and cols.max() <= right + 2  # over run b's steps only
    assert blue[:, :int(left)].any() and not blue[:, int(right) + 3:].any()  # run a before it
    ys, _ = _region(shown, height)
    gray = (np.abs(image - 0x55) < 40).all(axis=-1)
    assert gray[ys, round(left)].mean() > 0.3  # the dashed line where run b resumed
    assert not gray[ys.start + 3:ys.stop - 3, round(left) + 6:round(right)].any()  # only there
    ys, xs = _region(gone, height)  # the metric the chain never logged: "not logged", no curve
    assert not (red | blue)[ys, xs].any()
    middle = (ys.start + ys.stop) // 2
    dark = image[middle - 8:middle + 8, xs].max(axis=-1) < 200
    resume = round(gone.transData.transform((10, 0))[0]) - xs.start
    dark[:, resume - 4:resume + 5] = False
    assert dark.sum() > 50  # the text's pixels


def test_chain_picture_keeps_nothing_from_the_chain_before():
    """The canvas is reused and blitted; each picture equals one drawn on a fresh canvas."""
    from runchain.renderers.report.figures import ChainCanvas, chain_scale
    flat, ramp = _chain(5.0, 5.0), _chain(0.0, 10.0)
    scale = chain_scale([flat, ramp], ["m", "gone"])
    other = chain_scale([_chain(100.0, 300.0)], ["m", "gone"])
    canvas = ChainCanvas(["m", "gone"])
    for chain, on in ((flat, scale), (ramp, scale), (ramp, other), (flat, scale)):
        png = canvas.draw("b", SEGMENTS, chain, COLORS, on)
        assert canvas.axes[0].get_ylim() == on[1][0]
        assert png == ChainCanvas(["m", "gone"]).draw("b", SEGMENTS, chain, COLORS, on)


def test_fan_draws_the_shared_run_then_each_branch_in_its_run_colour():
    from runchain.renderers.report.figures import fan
    to_b, to_c = _chain(0.0, 1.0), _chain(0.0, 1.0)
    to_c["run_id"] = np.where(to_c["run_id"] == "b", "c", to_c["run_id"])
    to_c["m"][10:] = 0.0  # c parts from b after the shared run a
    image = _pixels(fan("a", {"b": to_b, "c": to_c}, "m", {**COLORS, "c": "#00ff00"},
                        {"b": {"a": None}, "c": {"a": None}}))
    red, green, blue = (_primary(image, channel) for channel in range(3))
    curve = slice(0, int(image.shape[1] * 0.85))  # the legend is to the right
    assert red[:, curve].any() and green[:, curve].any() and blue[:, curve].any()
    assert np.nonzero(blue[:, curve])[1].max() < np.nonzero(red[:, curve])[1].min()  # a, then b
    assert np.median(np.nonzero(green[:, curve])[0]) > np.median(np.nonzero(red[:, curve])[0])


def test_fan_draws_a_run_kept_in_two_timelines_both_ways():
    """c branched from run a's rows as they were before a was resumed in place with other
    rows: the fan draws a's rows in each timeline, not only the first chain's."""
    from runchain.renderers.report.figures import fan
    to_b, to_c = _chain(0.0, 1.0), _chain(0.0, 1.0)
    to_c["run_id"] = np.where(to_c["run_id"] == "b", "c", to_c["run_id"])
    to_c["m"][:] = 1.0  # a's abandoned rows and c: flat at the top
    def blue_rows(timeline_of_a_in_c):
        image = _pixels(fan("a", {"b": to_b, "c": to_c}, "m", COLORS,
                            {"b": {"a": None}, "c": {"a": timeline_of_a_in_c}}))
        rows = np.nonzero(_primary(image, 2)[:, :int(image.shape[1] * 0.85)])[0]
        return rows.max() - rows.min()
    assert blue_rows(0) > 1.8 * blue_rows(None)  # a from 0 to 0.47, and also flat at 1.0


def test_runs_that_logged_no_metric_still_get_a_report(wandb_dir, tmp_path):
    plain_run(wandb_dir, [])
    report = tmp_path / "empty.html"
    cli("report", "--dir", wandb_dir, "-o", report)
    data = _data(report.read_text(encoding="utf-8"))
    assert data["metrics"] == [] and len(data["runs"]) == 1
    page = write_report(runchain.open_source(wandb_dir), tmp_path / "s.html", static=True
                        ).read_text(encoding="utf-8")
    assert "Metrics: none logged." in page and "<h3>chain to " in page
    assert page.count("<img ") == 1  # the tree map; no empty chart


def test_cold_runs_are_decoded_in_a_pool_then_pictures_drawn_in_one(demo, tmp_path, monkeypatch):
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "cold"))
    calls, _ = pooled("from runchain.renderers.report import build_report\n"
                      f"build_report(runchain.open_source({str(demo['dir'])!r}), static=True)\n")
    asked = [(desc, parallel and forks) for _, desc, _, parallel, forks in calls]
    assert ("decoding histories", True) in asked and asked[-1] == ("drawing", True)


def _ink_at_right_edge(png: bytes) -> bool:
    return bool((_pixels(png)[:, -4:].max(axis=-1) < 160).any())


def test_long_run_names_and_ids_fit_in_the_pictures(demo):
    import dataclasses
    from runchain.renderers.report.figures import fan, tree_map
    from runchain.renderers.report.palette import run_colors
    tree = runchain.open_source(demo["dir"]).tree
    def with_name(node):  # as W&B names runs
        return dataclasses.replace(node, info=dataclasses.replace(node.info, name="bright-sun-1042"))
    named = dataclasses.replace(tree, nodes={k: with_name(n) for k, n in tree.nodes.items()})
    order = list(named.nodes)
    assert not _ink_at_right_edge(tree_map(named, order, run_colors(order)))  # labels not cut
    long = ["resnet50-lr3e-4-warmup", "resnet50-lr3e-4-warmup-resume1"]
    chain = {"global_step": np.arange(20), "run_id": np.repeat(long, 10), "m": np.arange(20.0)}
    assert not _ink_at_right_edge(fan(long[0], {long[1]: chain}, "m", run_colors(long),
                                      {long[1]: {}}))


def test_leaf_option_draws_only_those_chains(demo):
    src = runchain.open_source(demo["dir"])
    leaf = runchain.leaves(src.tree)[0]
    report = demo["base"] / "one.html"
    inner = next(run_id for run_id, node in src.tree.nodes.items() if node.children)
    cli("report", "--dir", demo["dir"], "-o", report, "--leaf", inner, "--leaf", leaf,
        "--metric", "accuracy/01")
    data = _data(report.read_text(encoding="utf-8"))  # a chain may end at a run with children
    assert data["leaves"] == [inner, leaf] and data["shown"] == ["accuracy/01"]
    assert data["allLeaves"] == runchain.leaves(src.tree)  # the tree map still offers every chain
    page = build_report(src, leaves=[leaf], static=True)
    assert page.count("<h3>chain to ") == 1
    page = build_report(src, leaves=[inner, leaf], static=True)
    assert page.count("<h3>chain to ") == 2 and f"<h3>chain to <code>{inner}</code>" in page


def test_unknown_leaf_empty_folder_and_unwritable_output_are_clean_errors(demo, tmp_path):
    proc = cli("report", "--dir", demo["dir"], "-o", tmp_path / "x.html", "--leaf", "nosuchrun",
               check=False)
    assert proc.returncode == 1 and "nosuchrun" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.html").exists()
    proc = cli("report", "--dir", tmp_path, "-o", tmp_path / "y.html", check=False)
    assert proc.returncode == 1 and "no runs" in proc.stderr and str(tmp_path) in proc.stderr
    nowhere = tmp_path / "no" / "such" / "folder"
    leaf = runchain.leaves(runchain.open_source(demo["dir"]).tree)[0]
    for args in (("report", "-o", nowhere / "r.html"), ("chain", leaf, "--csv", nowhere / "c.csv")):
        proc = cli(*args, "--dir", demo["dir"], check=False)
        assert proc.returncode == 1 and str(nowhere) in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr and "writable folder" in proc.stderr
    assert not nowhere.exists()


# -- publish ------------------------------------------------------------------------------

def _records(path, kind):
    record = pb.Record()
    for raw in scan_records(path.read_bytes()).records:
        if record_kind(raw) == kind:
            record.ParseFromString(raw)
            yield record


def test_publish_read_back_equals_chain_csv(demo, tmp_path):
    src = runchain.open_source(demo["dir"])
    leaf = max(src.tree.nodes, key=lambda r: src.tree.nodes[r].depth)
    before = set(demo["dir"].glob("offline-run-*"))
    # a W&B run: in a process of its own (helpers.runchain_process)
    proc = runchain_process("publish", leaf, "--dir", demo["dir"], "--mode", "offline")
    (folder,) = set(demo["dir"].glob("offline-run-*")) - before
    (path,) = folder.glob("run-*.wandb")
    assert "chain-" + leaf in proc.stdout
    assert "wandb:" not in proc.stdout + proc.stderr  # no banner, no sparklines (-v shows them)
    assert len((proc.stdout + proc.stderr).strip().splitlines()) <= 2
    view_id = folder.name.rsplit("-", 1)[1]
    assert view_id not in runchain.open_source(demo["dir"]).tree.nodes  # a view, not a run
    run = read_run_file(path)
    (run_record,) = (r.run for r in _records(path, "run"))
    assert run_record.display_name == f"chain-{leaf}" and run_record.job_type == "chain-view"
    root = src.chain(leaf)[0].run_id
    assert set(run_record.tags) == {f"root:{root}", f"leaf:{leaf}"}
    csv_path = tmp_path / "chain.csv"
    cli("chain", leaf, "--dir", demo["dir"], "--csv", csv_path)
    with open(csv_path, newline="") as f:
        table = list(csv.reader(f))
    header, body = table[0], table[1:]
    assert run.history["global_step"].tolist() == [int(r[0]) for r in body]
    assert run.history["_step"].tolist() == [int(r[0]) for r in body]  # step=global_step
    assert run.history["step"].tolist() == [int(r[2]) for r in body]
    for j, key in enumerate(header[3:], start=3):
        expected = [float(r[j]) if r[j] else np.nan for r in body]
        np.testing.assert_array_equal(run.history[key], expected, err_msg=key)
    run_ids = [json.loads(item.value_json) for r in _records(path, "history")
               for item in r.history.item if "/".join(item.nested_key) == "run_id"]
    assert run_ids == [r[1] for r in body]
    table = {item.nested_key[1]: json.loads(item.value_json) for r in _records(path, "history")
             for item in r.history.item if item.nested_key[0] == "segments"}
    assert table["_type"] == "table-file" and table["nrows"] == len(src.chain(leaf))
    content = json.loads((folder / "files" / table["path"]).read_text())
    assert [row[0] for row in content["data"]] == [s.run_id for s in src.chain(leaf)]
    assert content["columns"][:2] == ["run_id", "name"]


def test_publish_unknown_leaf_is_a_clean_error(demo):
    proc = cli("publish", "nosuchrun", "--dir", demo["dir"], "--mode", "offline", check=False)
    assert proc.returncode == 1 and "nosuchrun" in proc.stderr and "Traceback" not in proc.stderr


def test_the_runs_table_says_what_tells_each_run_from_its_parent_and_siblings(demo):
    """do_many gives each fork its own lr and seed: the report's data carries them."""
    data = _data(demo["html"])
    forks = [r for r in data["runs"] if r["parent"]]
    assert forks and all({"lr", "seed"} <= set(r["differs"]) for r in forks)
    src = runchain.open_source(demo["dir"])
    for r in forks:
        assert json.loads(r["differs"]["lr"]) == src.tree.nodes[r["id"]].info.config["lr"]


def test_the_first_chain_is_the_deepest_and_metric_globs_pick_the_charts(demo, tmp_path):
    tree = runchain.open_source(demo["dir"]).tree
    data = _data(demo["html"])
    depths = [tree.nodes[leaf].depth for leaf in data["leaves"]]
    assert depths == sorted(depths, reverse=True) and depths[0] == max(
        node.depth for node in tree.nodes.values())
    assert sorted(data["leaves"]) == sorted(runchain.leaves(tree))

    out = tmp_path / "loss.html"
    cli("report", "--dir", demo["dir"], "-o", out, "--metric", "loss/*", "--metric", "accuracy/01")
    shown = _data(out.read_text(encoding="utf-8"))["shown"]
    losses = sorted(m for m in data["metrics"] if m.startswith("loss/"))
    assert losses and shown == losses + ["accuracy/01"]
    proc = cli("report", "--dir", demo["dir"], "-o", tmp_path / "none.html", "--metric", "los/*",
               check=False)
    assert proc.returncode == 1 and "no metric of the source matches 'los/*'" in proc.stderr
    assert not (tmp_path / "none.html").exists()


def test_chain_and_publish_take_metric_globs(demo, tmp_path):
    leaf = runchain.leaves(runchain.open_source(demo["dir"]).tree)[0]
    header = cli("chain", leaf, "--dir", demo["dir"], "--metric", "loss/*", "--csv", "-"
                 ).stdout.splitlines()[0].split(",")
    assert header[:3] == ["global_step", "run_id", "step"]
    assert header[3:] and all(k.startswith("loss/") for k in header[3:])
    proc = cli("publish", leaf, "--dir", demo["dir"], "--mode", "offline", "--metric", "x*",
               check=False)
    assert proc.returncode == 1 and "matches 'x*'" in proc.stderr


def test_thinning_metrics_together_gives_what_thinning_each_gives():
    """``thin_finite`` (every metric of a piece logged on every row, thinned in one pass)
    keeps, for each, exactly the rows ``thin`` keeps: the same ends, bucket minima and
    maxima, ties to the first, on smooth values and on values full of ties."""
    from runchain.renderers.report.data import thin_finite
    rng = np.random.default_rng(7)
    for trial in range(200):
        n, m, k = int(rng.integers(1, 400)), int(rng.integers(1, 6)), int(rng.integers(2, 80))
        steps = np.sort(rng.choice(100_000, n, replace=False))
        values = (rng.integers(0, 4, (m, n)).astype(float) if trial % 2
                  else rng.normal(size=(m, n)))
        for row, (s, v) in zip(values, thin_finite(steps, values, k)):
            want = thin(steps, row, k)
            assert np.array_equal(s, want[0]) and np.array_equal(v, want[1]), (n, m, k)
