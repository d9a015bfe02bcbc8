"""Fixtures and hooks: real wandb offline runs in isolated temporary W&B directories. The
functions tests call are in ``helpers.py``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import NO_SKIP, Processes, do_run, isolate, step_into


def _no_skip(report) -> None:
    """With ``RUNCHAIN_TEST_NO_SKIP=1``, a skipped report (a test, or a module skipped while
    collected) fails, naming the reason. An expected failure (xfail) stays what it is."""
    if NO_SKIP and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (f"RUNCHAIN_TEST_NO_SKIP=1 forbids skips, and {report.nodeid} skipped: "
                           f"{str(reason).removeprefix('Skipped: ')}")


# Both run where the report is made (an xdist worker), before it is sent on.
@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    _no_skip((yield).get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    _no_skip((yield).get_result())


@pytest.fixture
def wandb_dir(tmp_path, monkeypatch) -> Path:
    """An isolated offline W&B setup; returns the ``wandb/`` folder runs are written to."""
    return isolate(monkeypatch, tmp_path)


@pytest.fixture
def processes():
    """Starts the processes a test signals or might leave running (``helpers.Processes``:
    SIGINT at its default whatever pytest was started with, each in a process group of its
    own); at teardown, whether the test passed or failed, ends every group it started:
    SIGTERM, then SIGKILL after a short grace."""
    with Processes() as started:
        yield started


@pytest.fixture(scope="session")
def demo_tree(tmp_path_factory):
    """Built once per session (per xdist worker): see ``tree``. Read it, never write to it;
    a test that adds runs copies it first."""
    with pytest.MonkeyPatch.context() as mp:
        wdir = isolate(mp, tmp_path_factory.mktemp("tree"))
        root = do_run("--n_steps", 40, "--n_checkpoint_steps", 10, "--n_metrics", 5, "--seed", 3)
        child = do_run("--n_steps", 15, "--n_checkpoint_steps", 10, "--checkpoint_artifact",
                       f"{root}@19", "--lr", "0.05")
        made = {"dir": wdir, "root": root, "child": child, "env": dict(os.environ),
                "cwd": os.getcwd()}
    return made  # the environment is the caller's again; ``tree`` steps back into it


@pytest.fixture
def tree(demo_tree, monkeypatch, tmp_path_factory):
    """A small real offline tree: root (40 steps, checkpoints at 9, 19, 29, 39) and a child from root@19.

    Each test runs inside the isolated environment the tree was made in (its W&B folders, its
    working directory), with a cache folder of its own. Returns a dict with ``dir`` (the
    wandb folder), ``root`` and ``child`` run ids, and ``env``.
    """
    step_into(demo_tree, monkeypatch)
    monkeypatch.setenv("RUNCHAIN_CACHE_DIR", str(tmp_path_factory.mktemp("tree_cache")))
    before = _listing(demo_tree["dir"])
    yield {**demo_tree, "env": dict(os.environ)}
    # the tree is shared by every test on this worker: one that writes into it changes what
    # later tests read (a flaky count far from its cause), so it fails here, by name
    assert _listing(demo_tree["dir"]) == before, "this test wrote into the shared demo tree"


def _listing(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


_refused_seen: dict[str, int] = {}  # a stand-in's base URL -> the last refusal ("n") checked


@pytest.fixture(autouse=True)
def nothing_refused(request):
    """After each test that used the W&B stand-in (itself, or through a fixture), every
    request it refused since the last check fails the test, naming it: an operation or field
    it does not serve is a 400, which wandb may only log (``wandb sync`` does). A module
    fixture's requests are checked with the first test that uses it. A test that sends
    refused requests on purpose is marked ``refuses``."""
    yield
    if "wandb_server" not in request.fixturenames:
        return
    server = request.getfixturevalue("wandb_server")
    refused = [r for r in server.refused() if r["n"] > _refused_seen.get(server.base_url, 0)]
    if refused:
        _refused_seen[server.base_url] = refused[-1]["n"]
    if request.node.get_closest_marker("refuses") is None:
        assert not refused, f"the W&B stand-in refused what was sent to it: {refused}"


@pytest.fixture(scope="session")
def wandb_server(tmp_path_factory):
    """A stand-in W&B server for the real SDK online (``tests/wandb_server.py``), in a
    subprocess on 127.0.0.1; one a session (each xdist worker has its own). Yields its
    ``Server``: ``base_url``, ``entity``, ``api_key``, ``env(base_env)``, ``requests()``,
    ``clear()``, ``asked()``, ``refused()``. Go online against it with
    ``isolate(mp, base, server=wandb_server)``."""
    from wandb_server import serving
    with serving(tmp_path_factory.mktemp("wandb_server")) as server:
        yield server
