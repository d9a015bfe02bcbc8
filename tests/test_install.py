"""What an install brings: the demo needs only the core (wandb, numpy, click, tqdm), and
``runchain report --static`` without its extra says which one to install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, cli

STATIC_HINT = "pip install -e '.[static]'"
NOT_IN_THE_DEMO = ("torch", "transformers", "lightning", "playwright", "pandas", "matplotlib")


def test_static_report_without_matplotlib_names_the_extra(tree, tmp_path, monkeypatch):
    blocker = tmp_path / "blocked"
    (blocker / "matplotlib").mkdir(parents=True)  # a matplotlib that will not import
    (blocker / "matplotlib" / "__init__.py").write_text("raise ImportError('blocked here')\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(blocker), str(ROOT)]))

    proc = cli("report", "--static", "-o", "print.html", check=False)

    assert proc.returncode == 1 and not Path("print.html").exists()
    assert "needs matplotlib and pillow (the static extra" in proc.stderr
    assert STATIC_HINT in proc.stderr and "Traceback" not in proc.stderr
    assert cli("report", "-o", "page.html").returncode == 0  # the interactive page needs neither


@pytest.mark.slow
def test_the_demo_installs_and_runs_with_the_core_dependencies_only(tmp_path, monkeypatch):
    """``pip install -e . && python do_many.py`` in a new virtualenv, from a copy of the
    tracked files (a fresh clone): it runs, and none of the extras' packages came with it."""
    clone = tmp_path / "clone"
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file():
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=600)
    python = str(venv / "bin" / "python")
    install = subprocess.run([python, "-m", "pip", "install", "--quiet", "-e", "."], cwd=clone,
                             capture_output=True, text=True, timeout=1800)
    assert install.returncode == 0, install.stderr

    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "PYTHON"))}
    env.update({name: str(tmp_path / name.lower()) for name in
                ("WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "RUNCHAIN_CACHE_DIR")},
               WANDB_MODE="offline", WANDB_SILENT="true", NETRC=str(tmp_path / "no-netrc"))
    env.pop("WANDB_API_KEY", None)
    demo = subprocess.run([python, str(clone / "do_many.py"), "--n_runs", "3"], cwd=work,
                          env=env, capture_output=True, text=True, timeout=1800)
    assert demo.returncode == 0, demo.stderr
    assert "3 new runs" in demo.stdout and " root " in demo.stdout
    assert (work / "runchain-report.html").stat().st_size > 10_000

    found = subprocess.run([python, "-c", "import importlib.util as u, sys; print(' '.join("
                            "m for m in sys.argv[1:] if u.find_spec(m)))", *NOT_IN_THE_DEMO],
                           env=env, capture_output=True, text=True, check=True, timeout=600)
    assert found.stdout.split() == []

    static = subprocess.run([str(venv / "bin" / "runchain"), "report", "--static", "-o",
                             "print.html"], cwd=work, env=env, capture_output=True, text=True,
                            timeout=600)
    assert static.returncode == 1 and STATIC_HINT in static.stderr
    assert not (work / "print.html").exists()
