"""Resume in place by W&B's rules (runchain/training/in_place.py): ``resume="must"``, a rewind, or a
refusal before ``wandb.init`` that loses no row.

Online, for real: one ``do_run.py --mode online`` root on the HTTP stand-in of W&B
(``tests/wandb_server.py``) that ``resume_args`` asks for its last step, counted in the
requests the server saw, and that ``do_run.py`` refuses to resume in place past its
checkpoint: the server sees no run start, no row. ``tests/test_online.py`` resumes it for
real with ``resume="must"`` and with ``--rewind``
(``test_resume_in_place_online_with_must_then_rewind``).

Offline, under a spy: ``do_run.py`` in a real subprocess whose ``wandb.init`` records its
arguments, then starts the run (offline). What a real offline run cannot show: that it
was asked ``resume="must"`` (offline wandb has no server to check it against), and which
``name`` it was given (none, resumed in place: a name would rename the run on W&B).
``tests/test_wandb_contract.py`` checks ``resume``, ``resume_from`` and ``lastHistoryStep``
against the installed wandb.
"""

import json
import os
import subprocess
import sys

import pytest
import wandb

import runchain
from helpers import ROOT, do_run, isolate, script, step_into

PROJECT = "resume-in-place"  # on the server shared by every test module of a worker

# do_run.py with wandb.init -> a spy that writes its arguments to $SPY_FILE, then starts
# the run offline.
WRAPPER = """
import json, os, runpy, sys
sys.path[:0] = [{root!r}]  # fake_model beside do_run.py
import wandb

real_init = wandb.init

def spy(**kwargs):
    with open(os.environ["SPY_FILE"], "a") as f:
        f.write(json.dumps({{k: kwargs.get(k) for k in ("id", "resume", "resume_from", "mode", "name")}}) + "\\n")
    return real_init(**kwargs)

wandb.init = spy
sys.argv = [{do_run!r}] + sys.argv[1:]
runpy.run_path({do_run!r}, run_name="__main__")
"""


@pytest.fixture
def spied(wandb_dir, tmp_path, monkeypatch):
    """Run do_run.py (offline) under the spy; returns ``run(*args)`` and ``seen()``, the
    arguments of each ``wandb.init`` call."""
    wrapper = tmp_path / "spied_do_run.py"
    wrapper.write_text(WRAPPER.format(root=str(ROOT), do_run=str(ROOT / "do_run.py")))
    calls = tmp_path / "init_calls.jsonl"
    monkeypatch.setenv("SPY_FILE", str(calls))

    def run(*args: str):
        return subprocess.run([sys.executable, str(wrapper), *args], capture_output=True,
                              text=True, env=dict(os.environ), timeout=600)

    def seen() -> list[dict]:
        return [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []

    return run, seen


def _root(n_steps=100) -> str:
    return do_run("--n_steps", str(n_steps), "--n_checkpoint_steps", "50", "--n_metrics", "3")


@pytest.fixture(scope="module")
def online_root(wandb_server, tmp_path_factory):
    """A run made online on the HTTP stand-in of W&B: steps 0..9, checkpoints at 4 and 9."""
    with pytest.MonkeyPatch.context() as mp:
        wandb_dir = isolate(mp, tmp_path_factory.mktemp("resume_online"), server=wandb_server)
        root = do_run("--mode", "online", "--project", PROJECT, "--n_steps", "10",
                      "--n_checkpoint_steps", "5", "--n_metrics", "2")
        return {"root": root, "dir": wandb_dir, "env": dict(os.environ), "cwd": os.getcwd()}


@pytest.fixture
def online(online_root, monkeypatch):
    step_into(online_root, monkeypatch)
    return online_root


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


# -- resume_args, online for real ----------------------------------------------------------

@pytest.mark.slow  # a real run online (docs/development.md)
def test_resume_args_asks_the_run_s_last_step_only_for_a_resume_in_place(online, wandb_server):
    root = online["root"]
    at_4 = runchain.load_checkpoint(f"{root}@4", mode="online", project=PROJECT)
    at_9 = runchain.load_checkpoint(f"{root}@9", mode="online", project=PROJECT)
    wandb_server.clear()
    assert runchain.resume_args(None, "new1", mode="online") == {"id": "new1"}
    assert runchain.resume_args(at_4, "other1", mode="online") == {"id": "other1"}
    assert runchain.resume_args(at_4, None, mode="online") == {"id": None}
    assert wandb_server.asked() == {}  # a fork or a root asks nothing
    assert runchain.resume_args(at_9, root, mode="online") == {"id": root, "resume": "must"}
    assert runchain.resume_args(at_4, root, mode="online", rewind=True) == {
        "resume_from": f"{root}?_step=4"}
    with pytest.raises(runchain.ResumeError,
                       match=f"logged up to step 9 .* --checkpoint_artifact {root}@4 without --run_id"):
        runchain.resume_args(at_4, root, mode="online")
    # each: wandb.Api() (the viewer), api.run(path), its lastHistoryStep
    assert wandb_server.asked() == {"Viewer": 3, "Run": 3, "RunHistoryKeys": 3}
    assert runchain.resume_args(at_4, root, mode="offline") == {"id": root, "resume": "must"}
    assert wandb_server.asked() == {"Viewer": 3, "Run": 3, "RunHistoryKeys": 3}


@pytest.mark.slow  # a real run online (docs/development.md)
def test_resume_args_online_without_credentials_fails_before_any_request(online, wandb_server,
                                                                         monkeypatch):
    root = online["root"]
    at_4 = runchain.load_checkpoint(f"{root}@4", mode="online", project=PROJECT)
    monkeypatch.delenv("WANDB_API_KEY")
    wandb_server.clear()
    with pytest.raises(runchain.CredentialsError):
        runchain.resume_args(at_4, root, mode="online")
    assert wandb_server.asked() == {}


@pytest.mark.slow  # a real run online (docs/development.md)
def test_do_run_online_refuses_a_resume_in_place_that_would_lose_rows(online, wandb_server):
    """Refused before ``wandb.init``: the server sees no run start and no row, the run keeps
    its rows on W&B, and no local run folder is made."""
    root, wandb_dir = online["root"], online["dir"]
    folders = sorted(p.name for p in wandb_dir.iterdir())
    wandb_server.clear()

    proc = script("do_run.py", "--mode", "online", "--project", PROJECT, "--run_id", root,
                  "--checkpoint_artifact", f"{root}@4", "--n_steps", "3", check=False)

    assert proc.returncode == 1
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    line = proc.stderr.strip()
    assert line.startswith("do_run.py: error: run ") and "steps 5..9 would be lost" in line
    assert "--rewind" in line and f"--checkpoint_artifact {root}@4 without --run_id" in line
    # what it asked: the checkpoint (load_checkpoint) and the run's last step, nothing more
    sent = wandb_server.asked()
    assert sent["RunHistoryKeys"] == 1
    started = {"UpsertBucket", "RunResumeStatus", "RewindRun", "CreateRunFiles", "UseArtifact",
               "CreateArtifact", "POST /files/{entity}/{project}/{run}/file_stream"}
    assert not started & set(sent), sent
    run = wandb.Api().run(f"{wandb_server.entity}/{PROJECT}/{root}")
    assert run.lastHistoryStep == 9 and [r["_step"] for r in run.scan_history()] == list(range(10))
    assert sorted(p.name for p in wandb_dir.iterdir()) == folders


# -- do_run.py offline in a real subprocess, wandb.init spied on ---------------------------

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
