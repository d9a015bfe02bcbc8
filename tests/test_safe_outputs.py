"""Outputs that cannot be hijacked, one sync at a time, and downloads that stay in their folder.

- ``runchain.atomic``: the temporary file is created exclusively beside the target, never
  through a planted symlink; an output keeps its mode; Ctrl-C or a SIGTERM turned into
  ``SystemExit`` leaves no partial file. ``write_marker`` does the same.
- ``runchain sync`` holds ``<dir>/.runchain-sync.lock``: a second sync (another process, or
  another thread) names the holder and uploads nothing; a lock left by a killed sync is taken
  over with a warning. The upload is stubbed at its boundary as in ``tests/test_sync.py``.
- ``Checkpoint.download()`` and ``path()`` refuse names that leave the folder, in a real
  offline run whose artifact manifest records them (wandb's ``add_file`` refuses such names,
  so the saver renames the entries just before ``log_artifact`` writes the manifest).
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import types
from pathlib import Path

import pytest

import runchain
from runchain import atomic
from runchain.commands import sync as syncing
from runchain.wandb_io.artifact_files import leaves_folder
from runchain.errors import SyncLockedError
from runchain.integrations.marker import read_marker, write_marker

from helpers import cli, isolate
from test_sync import FAKE_KEY, FakeWandbSync
from wandb_standin import StandinApi


def listing(folder: Path) -> list[str]:
    """Every path under ``folder``, symlinks not followed."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# -- atomic writes ---------------------------------------------------------------------------

@pytest.fixture
def names(monkeypatch):
    """The random part of the temporary names atomic_open tries, in order (then random)."""
    queue: list[int] = []
    real = atomic.secrets.randbelow
    monkeypatch.setattr(atomic.secrets, "randbelow", lambda n: queue.pop(0) if queue else real(n))
    return queue


def test_a_symlink_planted_at_the_temporary_name_is_not_written_through(tmp_path, names):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "out" / "chain.csv"
    out.parent.mkdir()
    names.append(42)
    planted = out.with_name(".chain.csv.000000000042.tmp")
    planted.symlink_to(victim)
    old_style = out.with_name(f".chain.csv.{os.getpid()}.tmp")  # the name it used to have
    old_style.symlink_to(victim)

    with atomic.atomic_open(out) as f:
        f.write("global_step,loss\n")

    assert victim.read_text() == "precious"
    assert out.read_text() == "global_step,loss\n" and not out.is_symlink()
    assert planted.is_symlink() and old_style.is_symlink()  # left as they were
    assert listing(out.parent) == sorted(["chain.csv", planted.name, old_style.name])


def test_an_output_that_is_a_symlink_is_replaced_and_its_target_untouched(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    out = tmp_path / "chain.csv"
    out.symlink_to(victim)
    atomic.atomic_write(out, lambda f: f.write(b"new"))
    assert victim.read_text() == "precious"
    assert not out.is_symlink() and out.read_text() == "new"


def test_an_existing_output_keeps_its_mode_and_a_new_one_gets_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        fresh, private = tmp_path / "fresh.csv", tmp_path / "private.csv"
        atomic.atomic_write(fresh, lambda f: f.write(b"a"))
        private.write_text("old")
        private.chmod(0o600)
        atomic.atomic_write(private, lambda f: f.write(b"new"))
        asked = tmp_path / "asked.bin"
        atomic.atomic_write(asked, lambda f: f.write(b"x"), perms=0o600)
        with atomic.atomic_open(tmp_path / "text.txt", perms=0o640) as f:
            f.write("x")
    finally:
        os.umask(old)
    assert (fresh.stat().st_mode & 0o777) == 0o640  # 0o666 less the umask, as open() gives
    assert (private.stat().st_mode & 0o777) == 0o600 and private.read_text() == "new"
    assert (asked.stat().st_mode & 0o777) == 0o600
    assert ((tmp_path / "text.txt").stat().st_mode & 0o777) == 0o640


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, SystemExit, OSError])
def test_an_interrupted_write_leaves_the_old_file_and_no_partial_one(tmp_path, interrupt):
    out = tmp_path / "chain.csv"
    out.write_text("old")
    with pytest.raises(interrupt):
        with atomic.atomic_open(out) as f:
            f.write("half")
            raise interrupt()
    assert listing(tmp_path) == ["chain.csv"] and out.read_text() == "old"


SIGTERMED = r'''
import signal, sys
from runchain.atomic import atomic_open
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # as the CLI turns SIGTERM into SystemExit
with atomic_open(sys.argv[1]) as f:
    f.write("x" * 100000)
    print("writing", flush=True)
    sys.stdin.read()  # until the parent's SIGTERM
'''


def test_a_sigterm_during_a_write_leaves_no_partial_file(tmp_path, processes):
    out = tmp_path / "chain.csv"
    proc = processes.start([sys.executable, "-c", SIGTERMED, str(out)], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    assert len(listing(tmp_path)) == 1  # the temporary file
    proc.send_signal(signal.SIGTERM)
    assert proc.wait() == 143
    assert listing(tmp_path) == []


def test_write_marker_never_writes_through_a_planted_symlink(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    marker = tmp_path / "ckpt" / "runchain.json"
    marker.parent.mkdir()
    marker.with_name(marker.name + ".tmp").symlink_to(victim)  # the name it used to have
    write_marker(marker, {"run": "abc", "step": 3})
    assert victim.read_text() == "precious"
    assert read_marker(marker) == {"run": "abc", "step": 3}
    assert listing(marker.parent) == ["runchain.json", "runchain.json.tmp"]


# -- one sync at a time ----------------------------------------------------------------------

HOLDER = r'''
import sys
from pathlib import Path
from runchain.commands.sync import sync_lock
with sync_lock(Path(sys.argv[1])):
    print("held", flush=True)
    sys.stdin.read()  # until the parent closes it (or kills this process)
'''


@pytest.fixture
def synced(tree, tmp_path, monkeypatch):
    """A copy of the small real tree, fake credentials, and the upload stubbed at
    ``upload_run``; returns (folder, stand-in api, boundary)."""
    import shutil
    isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("WANDB_API_KEY", FAKE_KEY)
    folder = tmp_path / "wandb"
    shutil.copytree(tree["dir"], folder, symlinks=True)
    api = StandinApi([], default_entity="ent")
    boundary = FakeWandbSync(api)
    monkeypatch.setattr(syncing, "upload_run", boundary)
    return folder, api, boundary, sorted([tree["root"], tree["child"]])


@pytest.fixture
def holder(synced, processes):
    """Another process holding the sync lock of the ``synced`` folder (``processes`` ends it)."""
    proc = processes.start([sys.executable, "-c", HOLDER, str(synced[0])],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_sync_names_the_process_holding_the_lock_and_uploads_nothing(synced, holder):
    folder, api, boundary, runs = synced
    with pytest.raises(SyncLockedError, match=rf"another `runchain sync` \(pid {holder.pid}, "
                                              rf"started .* UTC\) is syncing .*delete .*lock"):
        syncing.sync(folder, api=api)
    assert boundary.calls == [] and not (folder / syncing.STATE_FILE).exists()

    holder.stdin.close()  # the first sync ends, and removes its lock
    assert holder.wait() == 0 and not (folder / syncing.LOCK_FILE).exists()
    syncing.sync(folder, api=api)
    assert sorted(boundary.uploaded) == runs


def test_the_cli_says_which_process_holds_the_lock_and_exits_1(synced, holder, monkeypatch):
    folder, api, boundary, _ = synced
    monkeypatch.setattr(syncing, "sync", functools.partial(syncing.sync, api=api))
    proc = cli("sync", "--dir", folder, check=False)
    assert proc.returncode == 1 and f"pid {holder.pid}" in proc.stderr, proc.stderr
    assert boundary.calls == []
    dry = cli("sync", "--dir", folder, "--dry-run", check=False)
    assert dry.returncode == 0, dry.stderr  # a dry run changes nothing, so it takes no lock


def test_a_lock_left_by_a_killed_sync_is_taken_over_with_a_warning(synced, holder):
    folder, api, boundary, runs = synced
    holder.kill()
    holder.wait()
    assert f"pid={holder.pid}" in (folder / syncing.LOCK_FILE).read_text()
    with pytest.warns(UserWarning, match=rf"took over the sync lock .* from pid {holder.pid}, "
                                         rf"started .*, which is no longer running"):
        syncing.sync(folder, api=api)
    assert sorted(boundary.uploaded) == runs
    assert not (folder / syncing.LOCK_FILE).exists()


def test_two_syncs_at_once_upload_each_run_once(synced):
    folder, api, boundary, runs = synced
    started, release = threading.Event(), threading.Event()
    upload = boundary.__call__

    def first_waits(*args, **kwargs):  # the first sync is mid-upload while the second starts
        started.set()
        release.wait()
        return upload(*args, **kwargs)

    syncing.upload_run = first_waits  # undone by the fixture's monkeypatch
    results: list[object] = []
    first = threading.Thread(target=lambda: results.append(syncing.sync(folder, api=api)))
    first.start()
    started.wait()
    try:
        with pytest.raises(SyncLockedError, match=rf"pid {os.getpid()}"):
            syncing.sync(folder, api=api)
    finally:
        release.set()
        first.join()
    assert sorted(boundary.uploaded) == runs and len(results) == 1


# -- checkpoint files stay in their folder ---------------------------------------------------

BAD = ["../../x", "/tmp/runchain-absolute-x", "ok/../../y", "..\\x", "nul\x00x", "C:x"]

SAVER = r'''
import json, sys, numpy as np, wandb, runchain
out, bad = sys.argv[1], json.loads(sys.argv[2])
run = wandb.init(project="evil")
runchain.start(run)
files = []
for i, name in enumerate(["weights.npy", *bad]):
    files.append(f"{out}/f{i}.npy")
    np.save(files[-1], np.arange(3.0))
runchain.log(run, {"loss": 1.0}, step=0)
log_artifact = run.log_artifact

def hand_edited(artifact, **kwargs):  # wandb's add_file refuses these names
    entries = artifact.manifest.entries
    for i, name in enumerate(["weights.npy", *bad]):
        entry = entries.pop(f"f{i}.npy")
        entry.path = name
        entries[name] = entry
    return log_artifact(artifact, **kwargs)

run.log_artifact = hand_edited
runchain.save_checkpoint(run, {"iter_num": 1}, step=0, files=files)
run.finish()
print(run.id)
'''


@pytest.fixture(scope="module")
def evil(tmp_path_factory):
    """A real offline checkpoint whose manifest names ``weights.npy`` and every name in BAD."""
    with pytest.MonkeyPatch.context() as mp:
        base = tmp_path_factory.mktemp("evil")
        isolate(mp, base)
        (base / "out").mkdir()
        proc = subprocess.run([sys.executable, "-c", SAVER, str(base / "out"), json.dumps(BAD)],
                              capture_output=True, text=True, cwd=base)
        assert proc.returncode == 0, proc.stderr
        yield {"base": base, "id": proc.stdout.split()[-1], "env": dict(os.environ)}


@pytest.fixture
def evil_checkpoint(evil, monkeypatch):
    for name, value in evil["env"].items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(evil["base"])
    checkpoint = runchain.load_checkpoint(f"{evil['id']}@0", mode="offline")
    assert set(BAD) < set(checkpoint.files)  # the manifest in the run file holds them
    return checkpoint


def test_download_refuses_a_checkpoint_with_a_name_that_leaves_the_folder_and_writes_nothing(
        evil, evil_checkpoint):
    before = listing(evil["base"])
    absolute = Path(BAD[1])
    with pytest.raises(runchain.CheckpointError,
                       match=r"has a file named '\.\./\.\./x', which leaves the folder"):
        evil_checkpoint.download(evil["base"] / "dl" / "x" / "y")
    assert listing(evil["base"]) == before and not absolute.exists()


@pytest.mark.parametrize("name", BAD)
def test_path_refuses_a_name_that_leaves_the_folder(evil_checkpoint, name):
    with pytest.raises(runchain.CheckpointError, match="leaves the folder"):
        evil_checkpoint.path(name)
    assert evil_checkpoint.path("weights.npy").is_file()  # the good one still served


def test_online_download_checks_the_manifest_before_wandb_writes_anything():
    calls = []
    artifact = types.SimpleNamespace(
        manifest=types.SimpleNamespace(entries={"ckpt.pt": None, "../../x": None}),
        download=lambda root=None: calls.append(root))
    checkpoint = runchain.Checkpoint(runchain.CheckpointRef("abc", "step-0"), "abc", 0, "v0",
                                     {"step": 0}, {"ckpt.pt": "ckpt.pt"}, None, online=True,
                                     artifact=artifact)
    with pytest.raises(runchain.CheckpointError, match=r"'\.\./\.\./x', which leaves"):
        checkpoint.download("dl")
    assert calls == []


@pytest.mark.parametrize("name, leaves", [
    ("ckpt.pt", False), ("opt/adam.npy", False), ("a/./b", False), ("a..b", False),
    ("...", False), ("epoch:3.pt", False), ("../x", True), ("a/../../x", True), ("..", True),
    ("/etc/passwd", True), ("..\\x", True), ("\\\\server\\x", True), ("C:\\x", True),
    ("c:x", True), ("nul\x00x", True), ("", True)])
def test_which_names_leave_the_folder(name, leaves):
    assert leaves_folder(name) is leaves
