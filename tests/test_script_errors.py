"""do_run.py and do_many.py on bad input and interruptions: one ``<script>: error:`` line,
exit 1, nothing started and nothing damaged. Real subprocesses, real offline runs."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import ROOT, script

CONFIG = {"n_metrics": 2, "lr": 0.01, "seed": 0}
MODEL = {k: [0.5, 0.5] for k in ("rate", "scale", "period", "noise", "progress")}
GOOD = {"config": CONFIG, "model": MODEL, "optimizer": {"lr": 0.01}, "iter_num": 1, "rng": {}}


def _checkpoint_with(wandb_dir, text: str, run_id: str = "plain001") -> str:
    """A plain wandb offline run that logged two rows and a checkpoint artifact holding
    ``checkpoint.json`` = ``text``, as any script keeping to the contract could; returns its
    id. In a subprocess, as ``helpers.plain_run``."""
    code = ("import sys, wandb\n"
            "run = wandb.init(project='runchain-demo', id=sys.argv[1], mode='offline')\n"
            "run.log({'loss': 1.0}, step=0)\n"
            "run.log({'loss': 0.9}, step=1)\n"
            "artifact = wandb.Artifact(f'run-{run.id}-checkpoint', type='checkpoint')\n"
            "with artifact.new_file('checkpoint.json') as f:\n"
            "    f.write(sys.stdin.read())\n"
            "run.log_artifact(artifact, aliases=['latest'])\n"
            "run.finish()\n")
    subprocess.run([sys.executable, "-c", code, run_id], input=text, text=True, check=True,
                   capture_output=True, timeout=300)
    return run_id


def _runs(wandb_dir) -> list[str]:
    return sorted(p.name for p in wandb_dir.glob("*run-*"))


@pytest.mark.parametrize("state, needle", [
    ('{"step": 1' + "0" * 5000 + "}", '"step": inf'),
    (json.dumps({**GOOD, "step": 1, "config": 5}), '"config": 5, expected an object'),
    (json.dumps({**GOOD, "step": 1, "config": {**CONFIG, "n_metrics": "2"}}),
     '"config.n_metrics": \'2\', expected an integer'),
    (json.dumps({**GOOD, "step": 1, "iter_num": 10**40}), '"iter_num": an integer of about 41 digits'),
    (json.dumps({**GOOD, "step": 1, "model": [1, 2]}), '"model": a list of 2, expected an object'),
    (json.dumps({**GOOD, "step": 1, "rng": "pcg"}), '"rng": \'pcg\', expected an object'),
    (json.dumps({**GOOD, "step": 1, "optimizer": {}}), 'no "optimizer.lr" key'),
    ('{"step": 1, "config": ' + "[" * 50_000 + "]" * 50_000 + "}", "nests too deeply"),
    (json.dumps({**GOOD, "step": 1, "rng": {"bit_generator": "nope"}}), "cannot restore"),
])
def test_a_malformed_checkpoint_json_is_one_line_and_starts_no_run(wandb_dir, state, needle):
    run_id = _checkpoint_with(wandb_dir, state)
    before = _runs(wandb_dir)
    proc = script("do_run.py", "--checkpoint_artifact", run_id, "--n_steps", 3, check=False)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert proc.stderr.startswith("do_run.py: error: ") and needle in proc.stderr, proc.stderr
    assert _runs(wandb_dir) == before


def test_load_checkpoint_turns_a_huge_step_into_a_checkpoint_error_naming_step(wandb_dir):
    import runchain
    run_id = _checkpoint_with(wandb_dir, '{"step": ' + "9" * 5000 + "}")
    with pytest.raises(runchain.CheckpointError, match='"step": inf'):
        runchain.load_checkpoint(run_id, mode="offline")


def test_a_failed_online_wandb_init_is_one_line(wandb_dir, monkeypatch):
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setenv("WANDB_BASE_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("WANDB_INIT_TIMEOUT", "3")
    proc = script("do_run.py", "--n_steps", 3, "--mode", "online", check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    (line,) = [l for l in proc.stderr.splitlines() if l.strip()]
    assert line.startswith("do_run.py: error: wandb.init failed: ") and "127.0.0.1:9" in line


def test_do_many_rerun_refuses_a_second_tree_unless_asked(wandb_dir):
    args = ("--n_runs", 2, "--n_steps", 4, "--n_checkpoint_steps", 2, "--n_metrics", 2, "--no-report")
    script("do_many.py", *args)
    first = _runs(wandb_dir)
    proc = script("do_many.py", *args, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "already holds a tree of project runchain-demo" in proc.stderr
    assert "--start_run_id" in proc.stderr and "--add_tree" in proc.stderr
    assert _runs(wandb_dir) == first
    # another project is another tree; --add_tree adds one knowingly
    script("do_many.py", *args, "--project", "other")
    script("do_many.py", *args, "--add_tree")
    assert len(_runs(wandb_dir)) == len(first) + 4


def test_ctrl_c_in_do_many_ends_with_one_line(wandb_dir, processes):
    """The run it is training has a million steps: only the Ctrl-C ends it (and the
    ``processes`` fixture, should the test fail first)."""
    logs = wandb_dir / "do_many-logs"
    proc = processes.start(
        [sys.executable, str(ROOT / "do_many.py"), "--n_runs", "3", "--n_steps", "1000000",
         "--n_metrics", "2", "--no-report"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=os.environ.copy())
    for _ in range(600):  # until the root run has started (bounded rounds, no time limit)
        if any(wandb_dir.glob("offline-run-*/run-*.wandb")) and any(logs.glob("*.log")):
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole foreground group
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 1
    assert "Traceback" not in err
    assert err.strip().splitlines() == [err.strip()] and err.startswith("do_many.py: interrupted;")
