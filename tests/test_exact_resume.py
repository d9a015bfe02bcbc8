"""Exact resume: a resumed run reproduces, bit for bit, what its parent logged after the cut."""

import pytest

from helpers import do_run, rows, run_file
from runchain.readers.record_log import read_run_file

pytestmark = pytest.mark.slow  # see docs/development.md


def _rows(wandb_dir, run_id):
    return rows(read_run_file(run_file(wandb_dir, run_id)).history)


def _metrics(row):
    return {k: v for k, v in row.items() if not k.startswith("_")}  # drop _timestamp, _runtime


def test_40_steps_plus_80_resumed_from_step_39_equal_120_uninterrupted(wandb_dir):
    whole = do_run("--n_steps", 120, "--n_checkpoint_steps", 40, "--seed", 7)
    first = do_run("--n_steps", 40, "--n_checkpoint_steps", 40, "--seed", 7)
    rest = do_run("--n_steps", 80, "--n_checkpoint_steps", 40, "--checkpoint_artifact", f"{first}@39")
    expected = [_metrics(r) for r in _rows(wandb_dir, whole)]
    stitched = [_metrics(r) for r in _rows(wandb_dir, first) + _rows(wandb_dir, rest)]
    assert len(expected) == 120 and len(expected[0]) == 21  # 20 metrics + global_step
    assert stitched == expected  # float equality: bit for bit
    assert [r["global_step"] for r in stitched] == list(range(120))


def test_overriding_lr_changes_only_what_comes_after_the_resume_point(wandb_dir):
    parent = do_run("--n_steps", 60, "--n_checkpoint_steps", 20, "--n_metrics", 6)
    same = do_run("--n_steps", 40, "--checkpoint_artifact", f"{parent}@19")
    fork = do_run("--n_steps", 40, "--checkpoint_artifact", f"{parent}@19", "--lr", "0.05")
    after_cut = [_metrics(r) for r in _rows(wandb_dir, parent)[20:]]
    assert [_metrics(r) for r in _rows(wandb_dir, same)] == after_cut
    forked = [_metrics(r) for r in _rows(wandb_dir, fork)]
    assert [r["global_step"] for r in forked] == [r["global_step"] for r in after_cut]
    losses = [(a["loss/00"], b["loss/00"]) for a, b in zip(after_cut, forked)]
    assert all(f != p for p, f in losses)
    assert sum(f for _, f in losses[-10:]) < sum(p for p, _ in losses[-10:])  # faster learning
