"""Write the run files of forks and rewinds made by older wandb SDKs, for tests/test_chain_truth.py.

wandb 0.19 and older record ``fork_from`` and ``resume_from`` only in the run's config
(``_wandb.branch_point``), and start ``_step`` again at 0. runchain must read those files
as it reads a wandb 0.20+ fork or rewind, so the tests keep real ones, made here:

    python tests/data/make_old_wandb_runs.py            # wandb 0.19.11 and 0.17.9
    python tests/data/make_old_wandb_runs.py 0.18.7     # or any versions you name

Each version is installed into a throwaway virtualenv (pip needs the package index), runs
the two scenarios below offline in a temporary folder, and leaves only its run files,
``tests/data/wandb-<version>/wandb/offline-run-*/run-<id>.wandb`` (a few KB each). The run
ids are fixed, so regenerating changes the files' bytes (times) but not what they hold:

- fork: run ``oldforka`` logs ``loss = i`` at steps 0..29; run ``oldforkb`` is
  ``fork_from="oldforka?_step=15"`` and logs ``loss = 100 + i`` for 10 rows;
- rewind: run ``oldrewnd`` logs ``loss = i`` at steps 0..29, then (a second later, so the
  two timelines' start times differ) is ``resume_from="oldrewnd?_step=15"`` and logs
  ``loss = 200 + i`` for 5 rows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSIONS = ("0.19.11", "0.17.9")

SCENARIOS = r"""
import time
import wandb

def rows(run, n, base):
    for i in range(n):
        run.log({"loss": base + i})

a = wandb.init(project="oldsdk", id="oldforka", name="fork-parent")
rows(a, 30, 0.0)
a.finish()
b = wandb.init(project="oldsdk", id="oldforkb", name="fork-child", fork_from="oldforka?_step=15")
rows(b, 10, 100.0)
b.finish()

r = wandb.init(project="oldsdk", id="oldrewnd", name="rewound")
rows(r, 30, 0.0)
r.finish()
time.sleep(1.1)
r = wandb.init(project="oldsdk", id="oldrewnd", name="rewound", resume_from="oldrewnd?_step=15")
rows(r, 5, 200.0)
r.finish()
"""


def run(*cmd: str | Path, **kwargs) -> None:
    subprocess.run([str(c) for c in cmd], check=True, **kwargs)


def make(version: str, work: Path) -> Path:
    """The run files ``wandb==version`` writes for SCENARIOS, under tests/data/wandb-<version>."""
    venv = work / f"venv-{version}"
    print(f"wandb {version}: installing into {venv}", file=sys.stderr)
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "--quiet", f"wandb=={version}")
    home = work / f"home-{version}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    env.update(WANDB_MODE="offline", WANDB_SILENT="true", **{
        name: str(home) for name in
        ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR")})
    home.mkdir()
    run(python, "-c", SCENARIOS, env=env, cwd=home)

    out = HERE / f"wandb-{version}"
    shutil.rmtree(out, ignore_errors=True)
    for path in sorted((home / "wandb").glob("offline-run-*/run-*.wandb")):
        dest = out / "wandb" / path.parent.name / path.name
        dest.parent.mkdir(parents=True)
        shutil.copyfile(path, dest)
        print(f"  {dest.relative_to(HERE)}  {dest.stat().st_size} bytes", file=sys.stderr)
    return out


def main() -> None:
    versions = sys.argv[1:] or VERSIONS
    with tempfile.TemporaryDirectory(prefix="runchain-old-wandb-") as work:
        for version in versions:
            make(version, Path(work))


if __name__ == "__main__":
    main()
