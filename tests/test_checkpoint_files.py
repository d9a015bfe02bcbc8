"""Loading a checkpoint's files: ``Checkpoint.path(name)`` and ``Checkpoint.download()`` give
local paths, the same code offline (real runs here) and online (the stand-in in
``test_online_standins.py``)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import runchain


pytestmark = pytest.mark.slow  # see docs/development.md

SAVER = r'''
import sys, numpy as np, wandb, runchain
out = sys.argv[1]
run = wandb.init(project="files")
runchain.start(run)
np.save(f"{out}/weights.npy", np.arange(12.0).reshape(3, 4))
np.save(f"{out}/kept_here.npy", np.ones(3))
runchain.log(run, {"loss": 1.0}, step=0)
runchain.save_checkpoint(run, {"iter_num": 1}, step=0, files=[f"{out}/weights.npy", f"{out}/opt"],
                         references=[f"file://{out}/kept_here.npy"])
run.finish()
print(run.id)
'''


@pytest.fixture
def saved(wandb_dir, tmp_path):
    out = tmp_path / "out"
    (out / "opt").mkdir(parents=True)
    np.save(out / "opt" / "adam.npy", np.full(2, 7.0))
    proc = subprocess.run([sys.executable, "-c", SAVER, str(out)], capture_output=True,
                          text=True, check=True, cwd=tmp_path)
    return runchain.load_checkpoint(f"{proc.stdout.split()[-1]}@0", mode="offline"), out


def test_path_gives_a_file_you_can_load_offline(saved):
    ckpt, _ = saved
    np.testing.assert_array_equal(np.load(ckpt.path("weights.npy")), np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(np.load(ckpt.path("opt/adam.npy")), np.full(2, 7.0))
    np.testing.assert_array_equal(np.load(ckpt.path("kept_here.npy")), np.ones(3))  # file://
    assert ckpt.path("weights.npy").is_absolute()


def test_a_name_not_there_or_a_remote_reference_is_a_clear_error(saved):
    ckpt, _ = saved
    with pytest.raises(runchain.CheckpointError, match=r"no file 'weights\.pt'; close matches: weights\.npy"):
        ckpt.path("weights.pt")
    ckpt.files["elsewhere.bin"] = "s3://bucket/elsewhere.bin"  # as a run with boto3 records it
    with pytest.raises(runchain.CheckpointError, match=r"stored by reference at s3://bucket/elsewhere\.bin"):
        ckpt.path("elsewhere.bin")


def test_download_puts_every_local_file_under_one_folder(saved, tmp_path):
    ckpt, _ = saved
    folder = ckpt.download(tmp_path / "restored")
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == [
        "checkpoint.json", "kept_here.npy", "opt/adam.npy", "weights.npy"]
    np.testing.assert_array_equal(np.load(folder / "weights.npy"), np.arange(12.0).reshape(3, 4))
    assert ckpt.download(tmp_path / "restored") == folder  # again: nothing to copy


def test_a_reference_keeps_the_file_out_of_wandbs_staging_folder(saved):
    """Files given to files= are copied into $WANDB_DATA_DIR until uploaded; a file://
    reference is recorded as a pointer and never copied."""
    import os
    from pathlib import Path
    _, out = saved
    staged = [p.read_bytes() for p in Path(os.environ["WANDB_DATA_DIR"]).rglob("*") if p.is_file()]
    assert (out / "weights.npy").read_bytes() in staged  # files=: copied
    assert (out / "kept_here.npy").read_bytes() not in staged  # references=: not copied
