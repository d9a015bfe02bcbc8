"""runchain report and runchain publish on a real offline tree, and the report in a real browser."""

import base64
import csv
import json
import re
import shutil
import socket
import subprocess
import threading

import numpy as np
import pytest
from wandb.proto import wandb_internal_pb2 as pb

import runchain
from conftest import cli, isolate, plain_run, script
from runchain.readers.runfile import read_run_file, record_kind, scan_records

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
        yield {"dir": wdir, "base": base, "do_many_out": out, "plain": plain, "report": report,
               "html": report.read_text(encoding="utf-8")}


def test_do_many_ends_by_writing_the_report_and_printing_its_path(demo):
    written = demo["base"] / "runchain-report.html"
    assert written.is_file() and f"report: {written}" in demo["do_many_out"]
    assert "<h2 id=chains>" in written.read_text(encoding="utf-8")


def test_do_many_no_report_skips_it(tmp_path, monkeypatch):
    isolate(monkeypatch, tmp_path)
    out = script("do_many.py", "--n_runs", 1, "--n_steps", 5, "--n_metrics", 2, "--no-report").stdout
    assert not (tmp_path / "runchain-report.html").exists() and "report:" not in out


def test_sections_in_order_with_every_picture_embedded(demo):
    page = demo["html"]
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


def test_every_user_string_is_escaped(demo):
    page = demo["html"]
    assert XSS not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    report = demo["base"] / "bad-metric.html"
    cli("report", "--dir", demo["dir"], "-o", report, "--metric", BAD_METRIC, "--leaf", demo["plain"])
    text = report.read_text(encoding="utf-8")
    assert BAD_METRIC not in text and "&lt;b&gt;m&lt;/b&gt;&amp;&#x27;&quot;" in text


def test_nothing_external_is_referenced(demo):
    page = demo["html"]
    assert not re.search(r"<script|<link|<iframe|<object|@import|url\(", page, re.I)
    assert not re.search(r"(src|href)\s*=\s*[\"']?\s*(https?:|//|ftp:)", page, re.I)
    assert "http" not in page  # a local source has no W&B links either


def test_a_w_and_b_source_links_each_run_to_its_page(demo):
    from runchain.report import build_report
    from runchain.readers.project import open_project
    from wandb_standin import StandinApi, project_from_dir
    runs = [d for d in project_from_dir(demo["dir"]) if d.project == "runchain-demo"]
    source = open_project("ent/runchain-demo", api=StandinApi(runs))
    page = build_report(source)
    for run_id, url in source.urls.items():
        assert f'<a href="{url}">open</a>' in page and url.startswith("https://")
    assert len(source.urls) == 5
    assert not re.search(r"(src)\s*=\s*[\"']?\s*(https?:|//)", page)  # links, never loads


def _chain(low: float, high: float, n: int = 20) -> dict:
    """A chain of runs a (steps 0-9) and b (10 on), where m goes from low to high."""
    return {"global_step": np.arange(n), "run_id": np.array(["a"] * 10 + ["b"] * (n - 10)),
            "step": np.r_[np.arange(10), np.arange(n - 10)], "m": np.linspace(low, high, n),
            "gone": np.full(n, np.nan)}


SEGMENTS = [runchain.Segment("a", 9, 0), runchain.Segment("b", None, 10)]
COLORS = {"a": "#0000ff", "b": "#ff0000"}


def test_chains_drawn_together_share_a_scale_that_fits_them_all():
    from runchain.report_figures import chain_scale
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
    from runchain.report_figures import ChainCanvas, chain_scale
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
    from runchain.report_figures import ChainCanvas, chain_scale
    flat, ramp = _chain(5.0, 5.0), _chain(0.0, 10.0)
    scale = chain_scale([flat, ramp], ["m", "gone"])
    other = chain_scale([_chain(100.0, 300.0)], ["m", "gone"])
    canvas = ChainCanvas(["m", "gone"])
    for chain, on in ((flat, scale), (ramp, scale), (ramp, other), (flat, scale)):
        png = canvas.draw("b", SEGMENTS, chain, COLORS, on)
        assert canvas.axes[0].get_ylim() == on[1][0]
        assert png == ChainCanvas(["m", "gone"]).draw("b", SEGMENTS, chain, COLORS, on)


def test_fan_draws_the_shared_run_then_each_branch_in_its_run_colour():
    from runchain.report_figures import fan
    to_b, to_c = _chain(0.0, 1.0), _chain(0.0, 1.0)
    to_c["run_id"] = np.where(to_c["run_id"] == "b", "c", to_c["run_id"])
    to_c["m"][10:] = 0.0  # c parts from b after the shared run a
    image = _pixels(fan("a", {"b": to_b, "c": to_c}, "m", {**COLORS, "c": "#00ff00"}))
    red, green, blue = (_primary(image, channel) for channel in range(3))
    curve = slice(0, int(image.shape[1] * 0.85))  # the legend is to the right
    assert red[:, curve].any() and green[:, curve].any() and blue[:, curve].any()
    assert np.nonzero(blue[:, curve])[1].max() < np.nonzero(red[:, curve])[1].min()  # a, then b
    assert np.median(np.nonzero(green[:, curve])[0]) > np.median(np.nonzero(red[:, curve])[0])


def test_runs_that_logged_no_metric_still_get_a_report(wandb_dir, tmp_path):
    plain_run(wandb_dir, [])
    report = tmp_path / "empty.html"
    cli("report", "--dir", wandb_dir, "-o", report)
    page = report.read_text(encoding="utf-8")
    assert "Metrics: none logged." in page and "<h3>chain to " in page
    assert page.count("<img ") == 1  # the tree map; no empty chart


def test_cold_runs_are_decoded_in_a_pool_then_pictures_drawn_in_one(demo, tmp_path, monkeypatch):
    import runchain.readers.folder
    import runchain.parallel
    import runchain.report
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path / "cold"))
    monkeypatch.setattr(runchain.readers.folder, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(runchain.report, "MIN_PARALLEL", 1)
    monkeypatch.setattr(runchain.parallel, "workers", lambda: 2)
    pools, each = [], runchain.parallel.each

    def spy(func, jobs, desc, parallel):  # can the pool fork at the moment it is asked for?
        pools.append((desc, parallel and runchain.parallel.can_fork()))
        return each(func, jobs, desc, parallel)
    monkeypatch.setattr(runchain.parallel, "each", spy)
    runchain.report.build_report(runchain.open_source(demo["dir"]))
    assert ("decoding histories", True) in pools and pools[-1] == ("drawing", True)


def _ink_at_right_edge(png: bytes) -> bool:
    return bool((_pixels(png)[:, -4:].max(axis=-1) < 160).any())


def test_long_run_names_and_ids_fit_in_the_pictures(demo):
    import dataclasses
    from runchain.report_figures import fan, run_colors, tree_map
    tree = runchain.open_source(demo["dir"]).tree
    def with_name(node):  # as W&B names runs
        return dataclasses.replace(node, info=dataclasses.replace(node.info, name="bright-sun-1042"))
    named = dataclasses.replace(tree, nodes={k: with_name(n) for k, n in tree.nodes.items()})
    order = list(named.nodes)
    assert not _ink_at_right_edge(tree_map(named, order, run_colors(order)))  # labels not cut
    long = ["resnet50-lr3e-4-warmup", "resnet50-lr3e-4-warmup-resume1"]
    chain = {"global_step": np.arange(20), "run_id": np.repeat(long, 10), "m": np.arange(20.0)}
    assert not _ink_at_right_edge(fan(long[0], {long[1]: chain}, "m", run_colors(long)))


def test_leaf_option_draws_only_those_chains(demo):
    src = runchain.open_source(demo["dir"])
    leaf = runchain.leaves(src.tree)[0]
    report = demo["base"] / "one.html"
    cli("report", "--dir", demo["dir"], "-o", report, "--leaf", leaf)
    assert report.read_text(encoding="utf-8").count("<h3>chain to ") == 1
    inner = next(run_id for run_id, node in src.tree.nodes.items() if node.children)
    cli("report", "--dir", demo["dir"], "-o", report, "--leaf", inner, "--leaf", leaf)
    page = report.read_text(encoding="utf-8")  # a chain may end at a run that has children
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
    proc = cli("publish", leaf, "--dir", demo["dir"], "--mode", "offline")
    (folder,) = set(demo["dir"].glob("offline-run-*")) - before
    (path,) = folder.glob("run-*.wandb")
    assert "chain-" + leaf in proc.stdout
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


# -- the report in a real browser -------------------------------------------------------

def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.skip("NO BROWSER: the report's browser test needs headless Chromium (Debian's "
                "`chromium` package); .ci/run installs it with apt-get, which failed or was "
                "unavailable here")


class _Proxy:
    """A proxy on 127.0.0.1 that records every request the browser sends and refuses it,
    so nothing the browser does during the test can reach the network."""

    def __init__(self):
        self.requests = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(1)
                try:
                    self.requests.append(conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1"))
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


# Put first in <head>: a policy that lets the page load only what it embeds, and a record of
# everything the page tried to load beyond that (the policy blocks and reports it).
GUARD = ("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
         "img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">"
         "<script>window.blocked = []; document.addEventListener('securitypolicyviolation', "
         "e => window.blocked.push(e.blockedURI));</script>")
# Put last in <body>: measures what the page shows once it has loaded.
PROBE = """<script>
window.addEventListener("load", () => setTimeout(() => {
  const shown = [...document.querySelectorAll("img, svg")].map(el => {
    const r = el.getBoundingClientRect();
    return {tag: el.tagName, width: r.width, height: r.height,
            natural: el.naturalWidth === undefined ? null : el.naturalWidth};
  });
  const probe = document.createElement("pre");
  probe.id = "probe";
  probe.textContent = JSON.stringify({shown, blocked: window.blocked, text: document.body.innerText.length,
    resources: performance.getEntriesByType("resource").map(e => e.name)});
  document.body.appendChild(probe);
}, 0));
</script>"""


def _browse(chromium, tmp_path, proxy, *args):
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--disable-component-update",
           "--disable-sync", "--disable-default-apps", f"--proxy-server=http://127.0.0.1:{proxy.port}",
           "--proxy-bypass-list=<-loopback>", "--window-size=1280,2000", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def test_report_renders_in_headless_chromium_without_network(demo, tmp_path):
    chromium = _chromium()
    probed = tmp_path / "probed.html"  # the report plus a script that measures what it shows
    page = demo["html"].replace("<head>", "<head>" + GUARD, 1).replace("</body>", PROBE + "</body>")
    probed.write_text(page, encoding="utf-8")
    proxy = _Proxy()
    try:
        dom = _browse(chromium, tmp_path, proxy, "--virtual-time-budget=10000", "--dump-dom",
                      probed.as_uri())
        shot = tmp_path / "shot.png"
        _browse(chromium, tmp_path, proxy, f"--screenshot={shot}", demo["report"].as_uri())
    finally:
        proxy.close()
    match = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
    assert match, f"the page did not finish loading in Chromium:\n{dom.stderr[-2000:]}"
    probe = json.loads(match[1].replace("&quot;", '"').replace("&amp;", "&"))
    images = re.findall(r"<img ", demo["html"])
    assert len(probe["shown"]) == len(images) > 0
    for element in probe["shown"]:
        assert element["width"] > 50 and element["height"] > 50, element
        assert element["natural"] is None or element["natural"] > 0, element  # decoded
    assert probe["text"] > 500
    assert probe["blocked"] == []  # the page tried to load nothing it does not embed
    assert [r for r in probe["resources"] if not r.startswith("data:")] == []
    # Chromium's own background requests (its clock, component updates) reach the proxy,
    # which refuses them; none may come from the page, i.e. name a file:// or page URL.
    assert not [r for r in proxy.requests if "file:" in r or "report" in r]
    from matplotlib.image import imread
    pixels = imread(shot)
    assert pixels.shape[0] > 500 and pixels[..., :3].std() > 0.05  # not a blank page
    assert (pixels[..., :3].mean(axis=2) < 0.9).mean() > 0.02
