"""What an install brings: the demo needs only the core (wandb, numpy, click, tqdm), and
``runchain report --static`` without its extra (matplotlib, pillow) says which one to install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import ROOT, isolate, runchain_process

# What `runchain report --static` prints without matplotlib and pillow, all it prints
STATIC_MISSING = ("Error: runchain report --static needs matplotlib and pillow (the static "
                  "extra): pip install 'wandb-runchain[static]', or from a clone "
                  "pip install -e '.[static]'")
NOT_IN_THE_DEMO = ("torch", "transformers", "lightning", "playwright", "pandas", "matplotlib")


def files(folder: Path) -> dict[str, bytes]:
    """The files directly in ``folder``, with their bytes."""
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


def test_static_report_without_matplotlib_names_the_extra(tree, tmp_path, monkeypatch):
    """matplotlib and PIL that will not import: --static fails in one line that names the
    extra, and writes nothing; the interactive page needs neither."""
    blocker = tmp_path / "blocked"
    for name in ("matplotlib", "PIL"):
        (blocker / name).mkdir(parents=True)
        (blocker / name / "__init__.py").write_text(f"raise ImportError('no {name} here')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(  # the blockers first
        filter(None, [str(blocker), os.environ.get("PYTHONPATH")])))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # the tree's folder is shared: read it, write nothing there

    # in processes of their own: where matplotlib and PIL do not import
    proc = runchain_process("report", "--static", "--dir", tree["dir"], check=False)

    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [STATIC_MISSING]
    assert list(work.iterdir()) == []

    page = runchain_process("report", "--dir", tree["dir"], "-o", "page.html")
    assert page.returncode == 0 and (work / "page.html").stat().st_size > 10_000


@pytest.mark.slow
def test_the_demo_installs_and_runs_with_the_core_dependencies_only(tmp_path, monkeypatch):
    """``pip install -e . && python do_many.py`` in a new virtualenv, from a copy of the
    tracked files (a fresh clone): it runs, and none of the extras' packages came with it."""
    clone = tmp_path / "clone"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file():  # a tracked file deleted in the work tree is not copied
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=600)
    python = str(venv / "bin" / "python")
    # From the package registry: generous timeouts, and no limit on how long it may take.
    install = subprocess.run([python, "-m", "pip", "install", "--quiet", "-e", "."], cwd=clone,
                             capture_output=True, text=True, timeout=3600)
    assert install.returncode == 0, install.stderr

    work = tmp_path / "work"
    work.mkdir()
    wandb_dir = isolate(monkeypatch, work)  # offline, silent, every W&B folder in work
    for name in [n for n in os.environ if n.startswith("PYTHON")] + ["VIRTUAL_ENV"]:
        monkeypatch.delenv(name, raising=False)  # nothing of this test process's Python
    monkeypatch.setenv("PATH", os.pathsep.join([str(venv / "bin"), os.environ["PATH"]]))
    env = os.environ.copy()

    demo = subprocess.run([python, str(clone / "do_many.py"), "--n_runs", "3"], cwd=work,
                          env=env, capture_output=True, text=True, timeout=1800)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    ids = [p.name.rsplit("-", 1)[-1] for p in wandb_dir.glob("offline-run-*")]
    _, _, shown = demo.stdout.partition("3 new runs in project")
    assert len(ids) == 3 and all(run_id in shown for run_id in ids), demo.stdout
    assert (work / "runchain-report.html").stat().st_size > 10_000

    found = subprocess.run([python, "-c", "import importlib.util as u, sys; print(' '.join("
                            "m for m in sys.argv[1:] if u.find_spec(m)))", *NOT_IN_THE_DEMO],
                           cwd=work, env=env, capture_output=True, text=True, check=True,
                           timeout=600)
    assert found.stdout.split() == []

    before = files(work)
    static = subprocess.run([str(venv / "bin" / "runchain"), "report", "--static"], cwd=work,
                            env=env, capture_output=True, text=True, timeout=600)
    assert static.returncode == 1
    assert static.stderr.splitlines() == [STATIC_MISSING]
    assert files(work) == before  # runchain-report.html is the demo's, as it was
