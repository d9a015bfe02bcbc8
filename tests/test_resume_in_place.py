"""Resume in place by W&B's rules (runchain/in_place.py): ``resume="must"``, a rewind, or a
refusal before ``wandb.init`` that loses no row.

W&B is unreachable here: the online cases run ``do_run.py`` in a real subprocess whose
``wandb.Api`` is the stand-in (tests/wandb_standin.py, built from real offline runs) and
whose ``wandb.init`` is a spy that records its arguments, then starts the run offline.
``tests/test_wandb_contract.py`` checks ``resume``, ``resume_from`` and
``lastHistoryStep`` against the installed wandb.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import runchain
from conftest import ROOT, do_run
from runchain.readers.runfile import read_run_file
from wandb_standin import StandinApi, project_from_dir

TESTS = Path(__file__).resolve().parent

# do_run.py with wandb.Api -> the stand-in of the runs under $SPY_WANDB_DIR, and wandb.init ->
# a spy that writes its arguments to $SPY_FILE, then starts the run offline (without the
# resume arguments offline wandb has no server for).
WRAPPER = """
import json, os, runpy, sys
sys.path[:0] = [{tests!r}, {root!r}]  # the stand-in; fake_model beside do_run.py
import wandb
from wandb_standin import StandinApi, project_from_dir

wandb.Api = lambda *a, **k: StandinApi(project_from_dir(os.environ["SPY_WANDB_DIR"]))
real_init = wandb.init

def spy(**kwargs):
    with open(os.environ["SPY_FILE"], "a") as f:
        f.write(json.dumps({{k: kwargs.get(k) for k in ("id", "resume", "resume_from", "mode", "name")}}) + "\\n")
    run_id, rewind = kwargs.pop("id", None), kwargs.pop("resume_from", None)
    run_id = rewind.split("?")[0] if rewind else run_id
    kwargs.pop("resume", None)
    return real_init(**{{**kwargs, "id": run_id, "mode": "offline"}})

wandb.init = spy
sys.argv = [{do_run!r}] + sys.argv[1:]
runpy.run_path({do_run!r}, run_name="__main__")
"""


@pytest.fixture
def spied(wandb_dir, tmp_path, monkeypatch):
    """Run do_run.py under the spy; returns ``run(*args, online=)`` and ``seen()``, the
    arguments of each ``wandb.init`` call."""
    wrapper = tmp_path / "spied_do_run.py"
    wrapper.write_text(WRAPPER.format(tests=str(TESTS), root=str(ROOT), do_run=str(ROOT / "do_run.py")))
    calls = tmp_path / "init_calls.jsonl"
    monkeypatch.setenv("SPY_FILE", str(calls))
    monkeypatch.setenv("SPY_WANDB_DIR", str(wandb_dir))

    def run(*args: str, online: bool = False):
        env = dict(os.environ)
        if online:  # credentials for resolve_mode("online"); the stand-in answers every request
            env.update(WANDB_API_KEY="x" * 40, WANDB_MODE="online")
        return subprocess.run([sys.executable, str(wrapper), *args], capture_output=True,
                              text=True, env=env, timeout=600)

    def seen() -> list[dict]:
        return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []

    return run, seen


def _root(n_steps=100) -> str:
    return do_run("--n_steps", str(n_steps), "--n_checkpoint_steps", "50", "--n_metrics", "3")


def _files(wandb_dir: Path, run_id: str) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(wandb_dir.glob(f"*run-*-{run_id}*/run-{run_id}.wandb"))}


# -- the rule ---------------------------------------------------------------------------

@pytest.mark.parametrize("last", [None, 10, 49])
def test_a_run_at_or_before_the_checkpoint_resumes_with_must(last):
    assert runchain.in_place_init("r1", 49, last) == {"id": "r1", "resume": "must"}
    assert runchain.in_place_init("r1", 49, last, rewind=True) == {"id": "r1", "resume": "must"}


def test_a_run_past_the_checkpoint_rewinds_when_asked():
    assert runchain.in_place_init("r1", 49, 99, rewind=True) == {"resume_from": "r1?_step=49"}


def test_a_run_past_the_checkpoint_is_refused_naming_the_lost_steps_and_the_fork():
    with pytest.raises(runchain.ResumeError) as e:
        runchain.in_place_init("r1", 49, 99, fork_hint="fork it", rewind_hint="rewind it")
    text = str(e.value)
    assert "\n" not in text
    assert "logged up to step 99" in text and "steps 50..99 would be lost" in text
    assert "fork it" in text and "rewind it" in text


# -- resume_args against the stand-in API ------------------------------------------------

def test_resume_args_asks_the_run_s_last_step_only_for_a_resume_in_place(wandb_dir):
    root = _root()
    api = StandinApi(project_from_dir(wandb_dir))
    at_49 = runchain.load_checkpoint(f"{root}@49", mode="offline")
    at_99 = runchain.load_checkpoint(f"{root}@99", mode="offline")
    assert runchain.resume_args(None, "new1", mode="online", api=api) == {"id": "new1"}
    assert runchain.resume_args(at_49, "other1", mode="online", api=api) == {"id": "other1"}
    assert runchain.resume_args(at_49, None, mode="online", api=api) == {"id": None}
    assert api.requests["lastHistoryStep"] == 0  # a fork or a root asks nothing
    assert runchain.resume_args(at_99, root, mode="online", api=api) == {"id": root, "resume": "must"}
    assert runchain.resume_args(at_49, root, mode="online", api=api, rewind=True) == {
        "resume_from": f"{root}?_step=49"}
    with pytest.raises(runchain.ResumeError, match=f"--checkpoint_artifact {root}@49 without --run_id"):
        runchain.resume_args(at_49, root, mode="online", api=api)
    assert api.requests["lastHistoryStep"] == 3
    assert runchain.resume_args(at_49, root, mode="offline") == {"id": root, "resume": "must"}


def test_resume_args_online_without_credentials_fails_before_any_run(wandb_dir):
    root = _root()
    at_49 = runchain.load_checkpoint(f"{root}@49", mode="offline")
    with pytest.raises(runchain.CredentialsError):
        runchain.resume_args(at_49, root, mode="online")


# -- do_run.py in a real subprocess, wandb.init spied on ----------------------------------

def test_do_run_resumes_in_place_offline_with_resume_must(wandb_dir, spied):
    run, seen = spied
    root = _root()
    proc = run("--run_id", root, "--checkpoint_artifact", f"{root}@49", "--n_steps", "10")
    assert proc.returncode == 0, proc.stderr
    # no name: a name would rename the run on W&B; the run keeps the one it started with
    assert seen() == [{"id": root, "resume": "must", "resume_from": None, "mode": "offline",
                       "name": None}]
    assert runchain.open_source(wandb_dir).tree.nodes[root].info.name == "root"


def test_do_run_fork_and_root_pass_no_resume(wandb_dir, spied):
    run, seen = spied
    root = _root()
    assert run("--checkpoint_artifact", f"{root}@49", "--n_steps", "5").returncode == 0
    assert run("--n_steps", "5", "--n_metrics", "3").returncode == 0
    assert [(c["resume"], c["resume_from"], c["name"]) for c in seen()] == [
        (None, None, f"{root}@49"), (None, None, "root")]


def test_do_run_online_refuses_a_resume_in_place_that_would_lose_rows(wandb_dir, spied):
    run, seen = spied
    root = _root()  # logged steps 0..99; checkpoint at 49
    before = _files(wandb_dir, root)
    folders = sorted(p.name for p in wandb_dir.iterdir())
    proc = run("--run_id", root, "--checkpoint_artifact", f"{root}@49", "--n_steps", "10", online=True)
    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("do_run.py: error: run ") and "steps 50..99 would be lost" in line
    assert "--rewind" in line and f"--checkpoint_artifact {root}@49 without --run_id" in line
    assert seen() == []  # stopped before wandb.init: no run started, no row logged or lost
    assert _files(wandb_dir, root) == before
    assert sorted(p.name for p in wandb_dir.iterdir()) == folders


def test_do_run_online_rewinds_when_asked_and_goes_on_after_the_checkpoint(wandb_dir, spied):
    run, seen = spied
    root = _root()
    proc = run("--run_id", root, "--checkpoint_artifact", f"{root}@49", "--n_steps", "10",
               "--rewind", online=True)
    assert proc.returncode == 0, proc.stderr
    assert seen() == [{"id": None, "resume": None, "resume_from": f"{root}?_step=49",
                       "mode": "online", "name": None}]
    newest = sorted(_files(wandb_dir, root))[-1]
    steps = read_run_file(newest).history["_step"]
    assert int(steps.min()) == 50 and int(steps.max()) == 59  # the rows after the rewind point


def test_do_run_online_resumes_at_the_run_s_last_checkpoint_with_must(wandb_dir, spied):
    run, seen = spied
    root = _root()
    proc = run("--run_id", root, "--checkpoint_artifact", f"{root}@99", "--n_steps", "5", online=True)
    assert proc.returncode == 0, proc.stderr
    assert seen() == [{"id": root, "resume": "must", "resume_from": None, "mode": "online",
                       "name": None}]


# -- the framework callbacks share the rule -----------------------------------------------

class _OnlineRun:
    """What marker.attach reads of a wandb run resumed online (resume="must"): wandb's step
    counter starts after the run's last row on W&B."""

    def __init__(self, run_id: str, next_step: int):
        self.id, self.step, self.offline = run_id, next_step, False
        self.config: dict = {}
        self.logged: list = []

    def log(self, *args, **kwargs):
        self.logged.append((args, kwargs))


def test_a_framework_resume_in_place_online_past_the_checkpoint_is_refused():
    from runchain.integrations import marker as _marker
    run = _OnlineRun("r1", next_step=120)  # W&B holds rows up to 119
    saved = {"runchain_marker": _marker.MARKER_VERSION, "run": "r1", "step": 30, "row_step": 29,
             "checkpoint": "r1@30"}
    with pytest.raises(runchain.ResumeError, match="without WANDB_RUN_ID"):
        _marker.attach(run, saved, "train/global_step", "checkpoint-30")
    assert run.config == {} and run.logged == []  # refused before touching the run


def test_checkpoint_json_state_check_names_the_key_and_type():
    spec = {"config": {"n_metrics": int}, "model": {"rate": [float]}, "rng": dict}
    good = {"step": 3, "config": {"n_metrics": 2}, "model": {"rate": [1.0, 2]}, "rng": {}}
    runchain.check_state(good, spec)
    for bad, key in [({**good, "config": 5}, '"config": 5, expected an object'),
                     ({**good, "config": {"n_metrics": True}}, '"config.n_metrics": True'),
                     ({**good, "config": {"n_metrics": 10**30}}, "about 31 digits"),
                     ({**good, "model": {"rate": [1.0, "x"]}}, '"model.rate[1]"'),
                     ({**good, "rng": []}, '"rng": a list of 0, expected an object'),
                     ({k: v for k, v in good.items() if k != "rng"}, 'no "rng" key')]:
        with pytest.raises(runchain.CheckpointError, match="checkpoint.json") as e:
            runchain.check_state(bad, spec, hint="use mine")
        assert key in str(e.value) and str(e.value).endswith("; use mine"), str(e.value)
