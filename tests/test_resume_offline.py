"""Offline resume: references resolve from the parent's local run files; bad input fails cleanly."""

import hashlib
import os
import textwrap

import pytest

import runchain
from helpers import do_run, isolate, run_file, script, step_into


pytestmark = pytest.mark.slow  # see docs/development.md


@pytest.mark.parametrize("form, step", [
    ("{root}@19", 19),
    ("{root}", 39),  # latest
    ("run-{root}-checkpoint:step-29", 29),
    ("run-{root}-checkpoint:v0", 9),
    ("run-{root}-checkpoint:latest", 39),
    ("runchain-demo/run-{root}-checkpoint:v1", 19),
    ("someone/runchain-demo/run-{root}-checkpoint:step-9", 9),
])
def test_each_reference_form_resolves_offline(tree, form, step):
    ckpt = runchain.load_checkpoint(form.format(root=tree["root"]), mode="offline",
                                    wandb_dir=tree["dir"])
    assert (ckpt.run_id, ckpt.step, ckpt.state["step"]) == (tree["root"], step, step)
    assert ckpt.version == f"v{(step - 9) // 10}"
    assert ckpt.ref.short == f"run-{tree['root']}-checkpoint:step-{step}"
    assert ckpt.run_breadcrumbs.global_offset == 0 and not ckpt.online


def test_child_resolves_to_its_own_checkpoint_with_its_parents_breadcrumbs(tree):
    ckpt = runchain.load_checkpoint(f"{tree['child']}@9", mode="offline", wandb_dir=tree["dir"])
    assert ckpt.run_breadcrumbs.parent_run == tree["root"]
    assert runchain.core.breadcrumbs.breadcrumbs_for("x", tree["child"], "r", 9,
                                             ckpt.run_breadcrumbs).global_offset == 30


def test_do_run_accepts_every_form_and_records_the_pinned_reference(wandb_dir):
    root = do_run("--n_steps", 20, "--n_checkpoint_steps", 10, "--n_metrics", 3)
    for form in (f"{root}@9", root, f"run-{root}-checkpoint:v0",
                 f"me/runchain-demo/run-{root}-checkpoint:step-19"):
        child = do_run("--n_steps", 2, "--resume-from", form)
        crumbs = runchain.readers.record_log.read_run_file(run_file(wandb_dir, child)).config["runchain"]
        step = 19 if form in (root, f"me/runchain-demo/run-{root}-checkpoint:step-19") else 9
        assert crumbs["parent_checkpoint"] == f"run-{root}-checkpoint:step-{step}"
        assert crumbs["global_offset"] == step + 1


def _snapshot(wandb_dir):
    return {p.relative_to(wandb_dir): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in wandb_dir.rglob("*.wandb")}


def _fails_cleanly(wandb_dir, ref, *needles):
    """do_run.py exits non-zero with a message naming the problem and writes no run."""
    before = _snapshot(wandb_dir)
    proc = script("do_run.py", "--n_steps", 3, "--checkpoint_artifact", ref, check=False)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr
    assert _snapshot(wandb_dir) == before  # nothing written, nothing damaged
    return proc.stderr


def test_unknown_run_lists_close_matches(tree):
    wrong = tree["root"][:-1] + ("x" if tree["root"][-1] != "x" else "y")
    err = _fails_cleanly(tree["dir"], f"{wrong}@9", wrong, str(tree["dir"]), tree["root"])
    assert "close matches" in err


def test_unknown_alias_lists_the_checkpoints_that_exist(tree):
    _fails_cleanly(tree["dir"], f"{tree['root']}@18", "step-18", "step-9, step-19, step-29, step-39")
    _fails_cleanly(tree["dir"], f"run-{tree['root']}-checkpoint:v7", "'v7'")


def test_malformed_reference_fails_before_any_run(tree):
    _fails_cleanly(tree["dir"], f"{tree['root']}@-3", "bad checkpoint reference")


BAD_RUN = textwrap.dedent("""
    import json, os, sys, tempfile, wandb
    run = wandb.init(project="runchain-demo", id="badrun01", mode="offline")
    def log(alias, text, type="checkpoint", name="checkpoint.json"):
        art = wandb.Artifact("run-badrun01-checkpoint", type=type, metadata={"note": alias})
        with art.new_file(name) as f:
            f.write(text)
        run.log_artifact(art, aliases=[alias])
    log("missing", "{}", name="weights.json")
    log("notjson", "{not json")
    log("array", "[1, 2]")
    log("nostep", json.dumps({"iter": 3}))
    log("negative", json.dumps({"step": -1}))
    log("float", json.dumps({"step": 3.5}))
    log("string", json.dumps({"step": "3"}))
    log("boolean", json.dumps({"step": True}))
    log("wrongtype", json.dumps({"step": 2}), type="model")
    run.finish()
""")


@pytest.fixture(scope="module")
def bad_runs(tmp_path_factory):
    """Run badrun01 and its broken checkpoints, in a folder of their own."""
    with pytest.MonkeyPatch.context() as mp:
        wdir = isolate(mp, tmp_path_factory.mktemp("bad"))
        path = wdir.parent.parent / "bad_run.py"
        path.write_text(BAD_RUN)
        script(str(path))
        return {"dir": wdir, "env": dict(os.environ), "cwd": os.getcwd()}


@pytest.fixture
def bad_run(bad_runs, monkeypatch):
    step_into(bad_runs, monkeypatch)
    return bad_runs


@pytest.mark.parametrize("alias, needles", [
    ("missing", ["has no checkpoint.json", "weights.json"]),
    ("notjson", ["not valid JSON"]),
    ("array", ["JSON list", "expected an object"]),
    ("nostep", ['no "step" key']),
    ("negative", ['"step": -1', "non-negative integer"]),
    ("float", ['"step": 3.5', "non-negative integer"]),
    ("string", ["\"step\": '3'", "non-negative integer"]),
    ("boolean", ['"step": True', "non-negative integer"]),
    ("wrongtype", ["type 'model'", "expected 'checkpoint'"]),
])
def test_broken_checkpoint_fails_with_a_clear_error(bad_run, alias, needles):
    ref = f"run-badrun01-checkpoint:{alias}"
    _fails_cleanly(bad_run["dir"], ref, *needles)
    with pytest.raises(runchain.RunchainError):
        runchain.load_checkpoint(ref, mode="offline", wandb_dir=bad_run["dir"])


def test_deleted_staging_file_names_the_missing_path(wandb_dir):
    root = do_run("--n_steps", 10, "--n_checkpoint_steps", 10, "--n_metrics", 2)
    ckpt = runchain.load_checkpoint(root, mode="offline")
    staged = ckpt.files["checkpoint.json"]
    os.chmod(staged, 0o600)
    os.remove(staged)
    with pytest.raises(runchain.CheckpointError, match="WANDB_DATA_DIR") as err:
        runchain.load_checkpoint(root, mode="offline")
    assert staged in str(err.value)


def test_mode_online_without_credentials_fails_before_any_run(wandb_dir):
    proc = script("do_run.py", "--n_steps", 3, "--mode", "online", check=False)
    assert proc.returncode != 0
    assert "wandb login" in proc.stderr and "WANDB_API_KEY" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not list(wandb_dir.glob("*run-*"))


def test_checkpoint_by_reference_is_read_from_its_file_uri(wandb_dir, tmp_path):
    big = tmp_path / "weights.bin"
    big.write_bytes(b"\0" * 1024)
    script_path = tmp_path / "ref_run.py"
    script_path.write_text(textwrap.dedent(f"""
        import json, wandb, runchain
        run = wandb.init(project="runchain-demo", id="refrun01", mode="offline")
        runchain.start(run)
        runchain.log(run, {{"loss": 1.0}}, step=0)
        runchain.save_checkpoint(run, {{"note": "ref"}}, step=0, files=[{str(tmp_path / 'ref_run.py')!r}],
                                 references=["file://{big}"])
        run.finish()
    """))
    script(str(script_path))
    ckpt = runchain.load_checkpoint("refrun01@0", mode="offline")
    assert ckpt.state == {"note": "ref", "step": 0}
    assert ckpt.files["weights.bin"] == f"file://{big}"
    assert "ref_run.py" in ckpt.files


def test_an_empty_reference_is_an_error_not_a_new_root(tree):
    """An unset $CKPT passes ""; training a new root run instead would be a silent wrong tree."""
    _fails_cleanly(tree["dir"], "", "empty checkpoint reference")


@pytest.mark.parametrize("make, needle", [
    (lambda path: path.mkdir(), "is not a file"),
    (lambda path: path.write_text("[" * 100_000 + "]" * 100_000), "nests too deeply"),
    (lambda path: path.write_bytes(b'{"step": 1, "pad": "' + b"x" * (17 << 20) + b'"}'), "over runchain's cap"),
    (lambda path: path.write_text("{not json"), "not valid JSON"),
])
def test_a_checkpoint_json_that_cannot_be_read_is_one_clear_error(tmp_path, make, needle):
    from runchain.wandb_io.artifact_files import read_checkpoint_json
    path = tmp_path / "checkpoint.json"
    make(path)
    with pytest.raises(runchain.CheckpointError, match=needle):
        read_checkpoint_json(str(path), "run-x-checkpoint:v0")
