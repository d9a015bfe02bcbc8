"""The README runs as written: every ``python`` block, and every ``runchain`` command line of
"Looking at chains", in a folder where ``python do_many.py`` made a demo tree, as a reader
who followed the Quickstart has it (``./wandb``, no W&B credentials)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

import runchain
from helpers import isolate, script

pytestmark = pytest.mark.slow  # it makes real runs; see docs/development.md

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text(encoding="utf-8")
PYTHON_BLOCKS = re.findall(r"^```python\n(.*?)^```", TEXT, re.S | re.M)


def _section(heading: str) -> str:
    start = TEXT.index(f"\n{heading}\n")
    following = re.search(r"^## ", TEXT[start + len(heading) + 2:], re.M)
    return TEXT[start:start + len(heading) + 2 + following.start()] if following else TEXT[start:]


def _command_lines(heading: str) -> list[str]:
    """The lines of the section's bash blocks that run ``runchain`` with no ``<...>`` to fill
    in, without their comments."""
    blocks = re.findall(r"^```bash\n(.*?)^```", _section(heading), re.S | re.M)
    commands = [re.sub(r"\s+#.*$", "", line) for block in blocks for line in block.splitlines()]
    return [c for c in commands if c.startswith("runchain ") and not re.search(r"<[^>]+>", c)]


def _leaf_line() -> str:
    (line,) = [line for line in _section("## Looking at chains").splitlines()
               if line.startswith("LEAF=")]
    return line


COMMANDS = _command_lines("## Looking at chains")


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    """A folder after the Quickstart's demo, and the environment to run in it: ``./wandb``
    (WANDB_DIR unset, as for most readers), every other W&B folder isolated, offline."""
    base = tmp_path_factory.mktemp("quickstart")
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, base)
        mp.delenv("WANDB_DIR")
        # a small tree: 4 runs of 120 steps, each leaf past step 99 (the README cuts at 99)
        script("do_many.py", "--n_runs", 4, "--n_steps", 120, "--n_checkpoint_steps", 40,
               "--n_metrics", 6, "--no-report")
        env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    assert (base / "wandb").is_dir()
    return {"cwd": base, "env": env}


def _run(args: list[str], quickstart: dict, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=quickstart["cwd"], env={**quickstart["env"], **(env or {})},
                          capture_output=True, text=True, timeout=300)


def test_the_readme_has_python_blocks():
    assert PYTHON_BLOCKS, "README.md has no ```python block"


def test_the_readme_has_command_lines_to_run():
    assert len(COMMANDS) >= 5 and any(c.startswith("runchain chain $LEAF") for c in COMMANDS)


@pytest.mark.parametrize("code", PYTHON_BLOCKS,
                         ids=[f"{i}:{block.splitlines()[-1][:40]}"
                              for i, block in enumerate(PYTHON_BLOCKS)])
def test_python_block_runs_as_written(code, quickstart):
    if re.search(r"dataframe|pandas", code) and importlib.util.find_spec("pandas") is None:
        pytest.skip("this block needs the pandas extra: pip install -e '.[pandas]'")
    proc = _run([sys.executable, "-c", code], quickstart)
    assert proc.returncode == 0, f"README block failed:\n{code}\n{proc.stderr}"
    if "print(" in code:
        assert proc.stdout.strip(), f"README block printed nothing:\n{code}"


@pytest.fixture(scope="module")
def leaf(quickstart):
    """The README's own ``LEAF=...`` line, run in bash: the first leaf's id."""
    proc = _run(["bash", "-c", f"{_leaf_line()}\necho \"$LEAF\""], quickstart)
    assert proc.returncode == 0, proc.stderr
    found = proc.stdout.strip()
    assert re.fullmatch(r"[a-z0-9]{8}", found), (_leaf_line(), proc.stdout, proc.stderr)
    return found


@pytest.mark.parametrize("line", COMMANDS)
def test_looking_at_chains_line_runs(line, quickstart, leaf):
    proc = _run(["bash", "-c", line], quickstart, env={"LEAF": leaf})
    assert proc.returncode == 0, f"{line}\nexited {proc.returncode}:\n{proc.stderr}"
    if not re.search(r"--csv (?!-)|-o |--output |--parquet ", line):  # a file: may be quiet
        assert proc.stdout.strip(), f"{line} printed nothing"


def test_the_readmes_duckdb_query_reads_every_chain_of_an_export(quickstart, tmp_path):
    """The README's one DuckDB query, as written, over what ``runchain export`` wrote."""
    (line,) = [line for line in _section("## Looking at chains").splitlines()
               if line.startswith("duckdb -c ")]
    query = line.removeprefix("duckdb -c ").strip('"').replace('\\"', '"')
    out = tmp_path / "chains"
    assert _run(["runchain", "export", "--parquet", str(out)], quickstart).returncode == 0
    found = duckdb.sql(query.replace("'chains/", f"'{out}/")).fetchall()
    source = runchain.open_source(quickstart["cwd"] / "wandb")
    want = {leaf: float(np.nanmin(source.history(leaf, keys=["loss/00"])["loss/00"]))
            for leaf in runchain.leaves(source.tree)}
    assert dict(found) == want and len(want) >= 2

