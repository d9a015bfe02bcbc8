"""runchain tree / runchain chain on real offline trees, the CLI run in process."""

import csv
import errno
import json
import os
import shutil
import types

import pytest

import runchain
import runchain.atomic
from helpers import cli, do_run, isolate


pytestmark = pytest.mark.slow  # see docs/development.md


@pytest.fixture(scope="module")
def chained(tmp_path_factory):
    """whole: 120 steps; first (40 steps) -> rest (80 from first@39) -> fork (20 from rest@29)."""
    with pytest.MonkeyPatch.context() as mp:
        wdir = isolate(mp, tmp_path_factory.mktemp("chained"))
        whole = do_run("--n_steps", 120, "--n_checkpoint_steps", 40, "--seed", 5, "--n_metrics", 4)
        first = do_run("--n_steps", 40, "--n_checkpoint_steps", 10, "--seed", 5, "--n_metrics", 4)
        rest = do_run("--n_steps", 80, "--n_checkpoint_steps", 10, "--checkpoint_artifact", f"{first}@39")
        fork = do_run("--n_steps", 20, "--checkpoint_artifact", f"{rest}@29", "--lr", "0.04")
        yield {"dir": wdir, "whole": whole, "first": first, "rest": rest, "fork": fork}


def test_stitched_chain_equals_the_uninterrupted_run(chained):
    source = runchain.open_source(chained["dir"])
    stitched = source.history(chained["rest"])
    whole = source.history(chained["whole"])
    assert stitched["global_step"].tolist() == list(range(120))
    assert stitched["run_id"].tolist() == [chained["first"]] * 40 + [chained["rest"]] * 80
    for key in ("loss/00", "accuracy/01", "oscillation/02", "loss/03"):
        assert stitched[key].tolist() == whole[key].tolist()  # bit for bit


def test_chain_cuts_each_parent_at_the_checkpoint_step_the_child_used(chained):
    source = runchain.open_source(chained["dir"])
    segments = source.chain(chained["fork"])
    assert [(s.run_id, s.last_step, s.global_offset) for s in segments] == [
        (chained["first"], 39, 0), (chained["rest"], 29, 40), (chained["fork"], None, 70)]
    cols = source.history(chained["fork"], keys=["loss/00"])
    assert cols["global_step"].tolist() == list(range(90))
    assert set(cols) == {"global_step", "run_id", "step", "loss/00"}


def test_samples_thin_the_history_but_keep_each_segments_ends(chained):
    cols = runchain.open_source(chained["dir"]).history(chained["fork"], samples=12)
    assert len(cols["global_step"]) <= 15
    assert {0, 39, 40, 69, 70, 89} <= set(cols["global_step"].tolist())


def test_tree_json_lists_every_run_with_parent_offset_and_checkpoints(chained):
    runs = {r["id"]: r for r in json.loads(cli("tree", "--dir", chained["dir"], "--json").stdout)}
    assert set(runs) == {chained[k] for k in ("whole", "first", "rest", "fork")}
    fork = runs[chained["fork"]]
    assert (fork["parent_run"], fork["parent_step"], fork["global_offset"], fork["last_step"]) == (
        chained["rest"], 29, 70, 19)
    assert runs[chained["first"]]["checkpoints"][0] == {"step": 9, "alias": "step-9", "version": "v0",
                                                        "abandoned": False}
    assert not fork["fork"] and fork["first_step"] == 0  # a checkpoint edge, steps from 0
    for key in ("id", "project", "name", "state", "parent_run", "parent_step", "fork",
                "global_offset", "first_step", "last_step", "checkpoints"):
        assert all(key in r for r in runs.values())


def test_tree_text_indents_children_under_parents(chained):
    lines = cli("tree", "--dir", chained["dir"]).stdout.splitlines()
    fork_line = next(line for line in lines if line.strip().startswith(chained["fork"]))
    assert fork_line.startswith("    ") and f"from {chained['rest']}@29" in fork_line
    assert "global 70-89" in fork_line and "steps 0-19" in fork_line


def test_chain_csv_is_sorted_and_matches_the_api(chained, tmp_path):
    out = tmp_path / "chain.csv"
    cli("chain", chained["fork"], "--dir", chained["dir"], "--metric", "loss/00", "--csv", out)
    with open(out) as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["global_step", "run_id", "step", "loss/00"]
    api = runchain.open_source(chained["dir"]).history(chained["fork"], keys=["loss/00"])
    assert [int(r[0]) for r in rows[1:]] == api["global_step"].tolist()
    assert [float(r[3]) for r in rows[1:]] == api["loss/00"].tolist()


def test_unknown_run_lists_close_matches_without_traceback(chained):
    proc = cli("chain", chained["fork"][:-1] + "_", "--dir", chained["dir"], check=False)
    assert proc.returncode == 1 and chained["fork"] in proc.stderr
    assert "Traceback" not in proc.stderr


def test_project_without_credentials_says_how_to_log_in(wandb_dir):
    proc = cli("tree", "--project", "my-team/my-project", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "wandb login" in proc.stderr and "WANDB_API_KEY" in proc.stderr


def test_dir_and_project_together_is_a_usage_error(tmp_path):
    proc = cli("chain", "abc", "--dir", tmp_path, "--project", "e/p", check=False)
    assert proc.returncode == 2 and "either --dir or --project" in proc.stderr


def test_empty_directory_says_where_it_looked(tmp_path):
    proc = cli("tree", "--dir", tmp_path, check=False)
    assert proc.returncode == 1 and str(tmp_path) in proc.stderr and "no runs" in proc.stderr


def test_missing_parent_starts_the_chain_at_the_earliest_known_run(chained, tmp_path):
    copy = tmp_path / "wandb"
    shutil.copytree(chained["dir"], copy)
    for folder in copy.glob(f"*run-*-{chained['first']}"):
        shutil.rmtree(folder)
    proc = cli("chain", chained["fork"], "--dir", copy)
    assert (f"note: run {chained['rest']}: parent {chained['first']} is not in the source; "
            f"its chain starts at {chained['rest']}") in proc.stderr
    assert proc.stdout.splitlines()[1].split()[0] == chained["rest"]
    assert len(runchain.open_source(copy).runs) == 3


class Full:
    """A file on a disk that fills up after 4 KiB: the write raises ENOSPC."""
    def __init__(self, f):
        self.f, self.n = f, 0
    def write(self, text):
        self.n += len(text)
        if self.n > 4096:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.f.write(text)
    def __enter__(self):
        return self
    def __exit__(self, *exc):
        self.f.close()
    def __getattr__(self, name):
        return getattr(self.f, name)


def test_a_full_disk_leaves_the_csv_as_it_was(chained, tmp_path, monkeypatch):
    # atomic.py opens its temporary file with os.fdopen: that file fills up
    monkeypatch.setattr(runchain.atomic, "os", types.SimpleNamespace(
        **{**vars(os), "fdopen": lambda *args, **kwargs: Full(os.fdopen(*args, **kwargs))}))
    out = tmp_path / "chain.csv"
    out.write_text("an older file\n")
    proc = cli("chain", chained["fork"], "--dir", chained["dir"], "--csv", out, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"cannot write the CSV to {out}: No space left on device" in proc.stderr
    assert out.read_text() == "an older file\n"  # whole or absent: the old one, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.csv"]  # no temporary left


def test_a_csv_into_a_missing_folder_is_one_line(chained, tmp_path):
    proc = cli("chain", chained["fork"], "--dir", chained["dir"], "--csv",
               tmp_path / "nosuch" / "chain.csv", check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("Error: cannot write the CSV to ")


@pytest.mark.parametrize("command", [["chain", "{leaf}", "--metric", "loss/0", "--csv", "-"],
                                     ["report", "--metric", "loss/0", "-o", "r.html"]])
def test_a_misspelled_metric_is_an_error_with_close_matches(chained, command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [a.format(leaf=chained["fork"]) for a in command]
    proc = cli(*args, "--dir", chained["dir"], check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "logged metric 'loss/0'; close matches: " in proc.stderr and "loss/00" in proc.stderr
    assert not (tmp_path / "r.html").exists()


def test_history_with_an_unknown_key_raises_metric_error(chained):
    source = runchain.open_source(chained["dir"])
    with pytest.raises(runchain.MetricError, match="close matches: .*loss/00"):
        source.history(chained["fork"], keys=["loss/0"])
    assert source.history(chained["fork"], keys=["loss/00"])["loss/00"].size  # a real one is fine


def test_tree_shows_what_tells_forks_apart_and_marks_leaves(chained):
    """Runs started from one checkpoint with another lr differ only in config: tree says so."""
    out = cli("tree", "--dir", chained["dir"]).stdout
    fork_line = next(line for line in out.splitlines() if chained["fork"] in line)
    assert "  leaf" in fork_line and "lr=0.04" in fork_line
    rest_line = next(line for line in out.splitlines() if line.strip().startswith(chained["rest"]))
    assert "  leaf" not in rest_line
    runs = {r["id"]: r for r in json.loads(cli("tree", "--dir", chained["dir"], "--json").stdout)}
    assert runs[chained["fork"]]["config"]["lr"] == 0.04
    assert runs[chained["fork"]]["config_differs"]["lr"] == 0.04
    assert runs[chained["fork"]]["leaf"] and not runs[chained["rest"]]["leaf"]
    assert "runchain" not in runs[chained["fork"]]["config"]  # breadcrumbs are not config


def test_chain_without_a_run_lists_the_leaves_to_choose_from(chained):
    proc = cli("chain", "--dir", chained["dir"])
    listed = [line.split()[0] for line in proc.stdout.splitlines()]
    assert sorted(listed) == sorted([chained["whole"], chained["fork"]])
    fork_line = next(line for line in proc.stdout.splitlines() if line.startswith(chained["fork"]))
    assert "depth 2  global 70-89" in fork_line
    assert "runchain chain <leaf>" in proc.stderr


def test_chain_to_a_run_at_a_step_cuts_that_run_there(chained):
    proc = cli("chain", f"{chained['rest']}@29", "--dir", chained["dir"], "--csv", "-",
               "--metric", "loss/00")
    steps = [int(line.split(",")[0]) for line in proc.stdout.strip().splitlines()[1:]]
    assert steps == list(range(70))  # first 0-39, rest 0-29
    out = cli("chain", f"{chained['rest']}@29", "--dir", chained["dir"]).stdout
    assert out.splitlines()[0] == f"chain {chained['first']} -> {chained['rest']}: 2 runs"
    one = cli("chain", chained["whole"], "--dir", chained["dir"]).stdout
    assert one.splitlines()[0] == f"chain {chained['whole']}: 1 run"
    bad = cli("chain", f"{chained['rest']}@x", "--dir", chained["dir"], check=False)
    assert bad.returncode == 1 and "needs a run id and a non-negative integer step" in bad.stderr


def test_a_chain_and_every_branch_of_a_root_as_dataframes(chained):
    import pandas as pd  # the pandas extra; the test extra installs it
    source = runchain.open_source(chained["dir"])
    df = source.dataframe(chained["fork"], keys=["loss/00"])
    assert isinstance(df, pd.DataFrame)
    assert list(df.columns) == ["global_step", "step", "run_id", "loss/00"]
    assert df["global_step"].tolist() == list(range(90))
    root = chained["first"]
    branches = source.branches_dataframe(root, keys=["loss/00"])
    assert set(branches["leaf"]) == {chained["fork"]}  # first -> rest -> fork is its one chain
    assert branches.drop(columns="leaf").equals(df)
    with pytest.raises(ValueError, match="is not a root"):
        source.branches_dataframe(chained["rest"])
