"""save_checkpoint on a real offline run: bad arguments fail with CheckpointError, nothing half-logged."""

import subprocess
import sys

import pytest
import wandb

import runchain
from helpers import run_file
from runchain.readers.record_log import read_run_file


def _init(wandb_dir):
    # wandb caches its settings per process; dir= keeps this run in this test's folder.
    return wandb.init(project="runchain-demo", mode="offline", dir=wandb_dir.parent)


@pytest.fixture
def run(wandb_dir):
    run = _init(wandb_dir)
    runchain.start(run)
    yield run
    run.finish()


@pytest.mark.parametrize("kwargs, needle", [
    ({"step": -1}, "non-negative integer"),
    ({"step": 2.0}, "non-negative integer"),
    ({"step": True}, "non-negative integer"),
    ({"step": 3, "state": {"step": 4}}, "disagrees"),
    ({"step": 3, "state": {"weights": object()}}, "not JSON-serializable"),
    ({"step": 3, "files": ["/no/such/file.bin"]}, "does not exist"),
    ({"step": 3, "references": ["s3://bucket/run/checkpoint.json"]}, "reserved"),
])
def test_bad_checkpoint_arguments_raise_checkpoint_error(run, kwargs, needle):
    kwargs = {"state": {}, **kwargs}
    with pytest.raises(runchain.CheckpointError, match=needle):
        runchain.save_checkpoint(run, **kwargs)


def test_checkpoint_json_in_files_is_reserved(run, tmp_path):
    clash = tmp_path / "checkpoint.json"
    clash.write_text("{}")
    with pytest.raises(runchain.CheckpointError, match="reserved"):
        runchain.save_checkpoint(run, {}, step=0, files=[clash])


def test_two_files_with_one_name_raise_checkpoint_error(run, tmp_path):
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "weights.bin").write_bytes(b"x" + sub.encode())
    with pytest.raises(runchain.CheckpointError, match="step 5"):
        runchain.save_checkpoint(run, {}, step=5, files=[tmp_path / "a" / "weights.bin",
                                                         tmp_path / "b" / "weights.bin"])


FAILED_THEN_GOOD = r"""
import sys, wandb, runchain
from pathlib import Path
run = wandb.init(project="runchain-demo", mode="offline")
runchain.start(run)
try:
    runchain.save_checkpoint(run, {}, step=-1)
except runchain.CheckpointError:
    print("refused")
folder = Path(sys.argv[1]) / "weights"
folder.mkdir()
(folder / "w.bin").write_bytes(b"123")
runchain.save_checkpoint(run, {"note": "ok"}, step=0, files=[folder])
run.finish()
print(run.id)
"""


def test_failed_saves_log_no_artifact_and_good_ones_still_do(wandb_dir, tmp_path):
    # In a subprocess: an in-process finish() can return before wandb's writer is done.
    proc = subprocess.run([sys.executable, "-c", FAILED_THEN_GOOD, str(tmp_path)],
                          capture_output=True, text=True, check=True, cwd=tmp_path)
    refused, run_id = proc.stdout.split()
    assert refused == "refused"
    (artifact,) = read_run_file(run_file(wandb_dir, run_id)).artifacts
    assert artifact.metadata == {"step": 0}
    assert set(artifact.files) == {"checkpoint.json", "weights/w.bin"}


def test_a_checkpoint_step_past_what_the_run_logged_names_the_mix_up(run):
    for step in range(6):
        runchain.log(run, {"loss": 1.0}, step=step)
    runchain.save_checkpoint(run, {}, step=5)  # the step just logged: fine
    with pytest.raises(runchain.CheckpointError, match=r"step 20 is past the last step .* logged \(5\)"
                                                       r".* not a training counter"):
        runchain.save_checkpoint(run, {}, step=20)


def test_the_last_logged_step_is_kept_per_run_object_and_goes_with_it(wandb_dir):
    """``last_logged_step`` is what ``save_checkpoint`` checks: per run object, so a run of
    the same id made again in this process (resumed in place) starts with none."""
    import gc

    first = _init(wandb_dir)
    runchain.start(first)
    assert runchain.last_logged_step(first) is None
    for step in range(3):
        runchain.log(first, {"loss": 1.0}, step=step)
    assert runchain.last_logged_step(first) == 2
    run_id = first.id
    first.finish()
    again = wandb.init(project="runchain-demo", mode="offline", dir=wandb_dir.parent,
                       id=run_id, resume="allow")
    runchain.start(again)
    assert again.id == run_id and runchain.last_logged_step(again) is None
    runchain.log(again, {"loss": 0.5}, step=0)
    assert runchain.last_logged_step(again) == 0
    assert runchain.last_logged_step(first) == 2  # still its own
    key = id(first)
    assert key in runchain.training.tracking._last_logged
    del first
    gc.collect()
    assert key not in runchain.training.tracking._last_logged  # collected, its entry gone with it
    again.finish()
