"""Run data cannot drive the terminal, and SIGTERM leaves no partial file.

Run names, config keys and values, projects, ids from folder names, notes and error
messages all reach the terminal through ``formats.visible``: a control character (ESC, CR,
LF, BEL, a bidi override) is printed as its escape. Real offline runs, the CLI in process
(``helpers.cli``, whose stdout keeps a lone CR, where a subprocess's text would turn it into
a newline); the SIGTERM in a subprocess of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from helpers import cli
from runchain.renderers.formats import visible
from test_front_door import offline_run

HOSTILE = "\x1b[2J\x1b]0;owned\x07\r\nforged line\u202e"
RAW = ("\x1b", "\x07", "\r", "\u202e")


def _clean(text: str) -> None:
    for char in RAW:
        assert char not in text, f"{char!r} reached the terminal: {text!r}"


def test_visible_escapes_control_characters_and_keeps_the_rest():
    assert visible("loss/train é 日本") == "loss/train é 日本"
    assert visible(HOSTILE) == "\\x1b[2J\\x1b]0;owned\\x07\\r\\nforged line\\u202e"
    assert visible(visible(HOSTILE)) == visible(HOSTILE)


@pytest.fixture
def hostile(wandb_dir):
    """Two roots whose configs differ by a hostile key and value, one named with escapes, in
    a project with escapes, and a copy of a run under a folder whose id holds an escape."""
    offline_run(wandb_dir, project="p", name="ok", config={"lr": 1}, rows=3)
    run_id = offline_run(wandb_dir, project="p", name=f"evil{HOSTILE}",
                         config={"lr": 2, f"key{HOSTILE}": f"value{HOSTILE}"}, rows=3)
    (folder,) = wandb_dir.glob(f"offline-run-*-{run_id}")
    odd = "ab\x1b[2Jcd"
    copy = folder.with_name(folder.name.replace(run_id, odd))
    shutil.copytree(folder, copy)
    (copy / f"run-{run_id}.wandb").rename(copy / f"run-{odd}.wandb")
    return wandb_dir


def test_tree_prints_one_line_per_run_with_every_control_character_escaped(hostile):
    proc = cli("tree", "--dir", hostile)
    _clean(proc.stdout)
    _clean(proc.stderr)
    lines = proc.stdout.splitlines()
    assert len(lines) == 3, proc.stdout  # the \r\n in a config key forged no line
    assert any("key\\x1b[2J\\x1b]0;owned\\x07\\r\\nforged line\\u202e=" in line for line in lines)
    assert any("ab\\x1b[2Jcd" in line for line in lines)


def test_leaves_notes_and_errors_escape_run_data_too(hostile):
    for args in (["chain", "--dir", hostile], ["chain", f"x{HOSTILE}", "--dir", hostile],
                 ["sync", "--dry-run", "--dir", hostile]):
        proc = cli(*args, check=False)
        _clean(proc.stdout)
        _clean(proc.stderr)
    proc = cli("chain", f"x{HOSTILE}", "--dir", hostile, check=False)
    assert proc.returncode == 1 and "x\\x1b[2J" in proc.stderr


def test_json_output_escapes_by_json_s_own_rules(hostile):
    import json
    proc = cli("tree", "--json", "--dir", hostile)
    _clean(proc.stdout)
    names = {run["name"] for run in json.loads(proc.stdout)}
    assert f"evil{HOSTILE}" in names  # the data itself is kept whole


SIGTERM_MIDWAY = r"""
import os, signal, sys
import runchain.renderers.formats as formats
from runchain.commands.cli import main

write_csv = formats.write_csv

def interrupted(columns, out):  # SIGTERM arrives halfway through writing the CSV
    out.write("global_step\n0\n")
    out.flush()
    os.kill(os.getpid(), signal.SIGTERM)
    return write_csv(columns, out)

formats.write_csv = interrupted
main(sys.argv[1:])
"""


def test_sigterm_while_writing_a_csv_leaves_no_partial_file(tree, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "chain.csv").write_text("the old file\n")
    proc = subprocess.run([sys.executable, "-c", SIGTERM_MIDWAY, "chain", tree["child"], "--csv",
                           str(out / "chain.csv")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 128 + 15, proc.stderr
    assert "Traceback" not in proc.stderr
    assert os.listdir(out) == ["chain.csv"]  # no hidden temporary file left
    assert (out / "chain.csv").read_text() == "the old file\n"
