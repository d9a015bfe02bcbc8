"""The online code paths: small in-memory stand-ins for wandb objects, and real artifacts
on the HTTP stand-in of W&B.

The stand-ins below carry the same method names as the real objects (``wandb.Api``,
``wandb.Artifact``, ``ArtifactManifestEntry``, the public ``Run`` that ``logged_by``
returns, and ``wandb.Run``). They are passed in through ``api=`` and as the run; wandb
itself is never patched. They record every call, so these tests assert what runchain
asked W&B for: the exact artifact path of each reference form, the default entity, where
checkpoint.json is downloaded, reference URIs (``s3://``), producers W&B does not know,
requests that fail (``CommError`` on a lookup, on ``use_artifact``), the breadcrumbs and
``define_metric`` calls ``start`` makes, and the artifact kinds ``checkpoint_steps`` sorts.
The HTTP server records no request's variables, fails none on demand and serves no
``s3://``, so these stay here. ``test_online.py`` runs the flows themselves for real
(``do_many.py --mode online``: ``start`` and ``log`` online, ``load_checkpoint``,
``checkpoint_steps``, ``Checkpoint.path`` and ``download``).

For real (the last section): artifacts logged online by the real SDK to the HTTP stand-in
(``tests/wandb_server.py``), then resolved by ``load_checkpoint`` through the real
``wandb.Api``: every malformed ``checkpoint.json``, none, a metadata step that disagrees,
the wrong type, a missing checkpoint or run, a run without checkpoints, a checkpoint's
files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import wandb

import runchain
from runchain.wandb_io.mode import credential_source

from helpers import isolate, step_into

PARENT = "par3nt01"
CHILD = "ch1ld002"

ROOT_CRUMBS = {  # the parent's own breadcrumbs: it is itself a child, two levels down
    "parent_run": "grandpa",
    "parent_checkpoint": "run-grandpa-checkpoint:step-59",
    "parent_step": 59,
    "global_offset": 100,
    "root_run": "root0000",
    "depth": 2,
}


# -- stand-ins -----------------------------------------------------------------

class FakeEntry:
    """``ArtifactManifestEntry``: ``download(root=)`` writes the file into root, returns its path."""

    def __init__(self, name: str, text: str | None = None, ref: str | None = None):
        self.path = name
        self.text = text
        self.ref = ref  # None for a real file, a URI for a reference
        self.downloads: list[str | None] = []

    def download(self, root: str | None = None) -> str:
        self.downloads.append(root)
        target = Path(root or "artifacts/standin") / self.path  # wandb: ./artifacts/<name>
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(self.text, encoding="utf-8")
        return str(target)


class FakeManifest:
    def __init__(self, entries: dict[str, FakeEntry]):
        self.entries = entries


class FakeProducer:
    """The public ``Run`` that ``Artifact.logged_by()`` returns."""

    def __init__(self, run_id: str, config: dict[str, Any]):
        self.id = run_id
        self.config = config


class FakeArtifact:
    def __init__(self, *, type: str = "checkpoint", version: str = "v3",
                 checkpoint_json: str | None = '{"step": 39, "model": [1, 2]}',
                 producer: FakeProducer | None = None, metadata: dict | None = None,
                 extra_entries: dict[str, FakeEntry] | None = None,
                 name: str = f"run-{PARENT}-checkpoint",
                 aliases: tuple[str, ...] = ("step-39", "latest")):
        self.name = f"{name}:{version}"  # the public Artifact's name is "collection:vN"
        self.aliases = list(aliases)
        self.type = type
        self.version = version
        self.metadata = metadata if metadata is not None else {}
        entries = dict(extra_entries or {})
        if checkpoint_json is not None:
            entries["checkpoint.json"] = FakeEntry("checkpoint.json", checkpoint_json)
        self.manifest = FakeManifest(entries)
        self.producer = producer
        self.get_entry_calls: list[str] = []

    def get_entry(self, name: str) -> FakeEntry:
        self.get_entry_calls.append(name)
        if name not in self.manifest.entries:  # wandb raises KeyError, too
            raise KeyError(f"Path not contained in artifact: {name}")
        return self.manifest.entries[name]

    def logged_by(self) -> FakeProducer | None:
        return self.producer

    def download(self, root: str | None = None) -> str:
        for entry in self.manifest.entries.values():
            entry.download(root or "artifacts/standin")
        return str(Path(root or "artifacts/standin").resolve())


class FakePublicRun:
    def __init__(self, artifacts: list[FakeArtifact]):
        self.artifacts = artifacts

    def logged_artifacts(self) -> list[FakeArtifact]:
        return list(self.artifacts)


class FakeApi:
    """``wandb.Api``: artifacts and runs by full path; unknown paths raise ValueError like wandb."""

    def __init__(self, artifacts: dict[str, FakeArtifact] | None = None,
                 runs: dict[str, FakePublicRun] | None = None, default_entity: str = "me"):
        self.artifacts = artifacts or {}
        self.runs = runs or {}
        self.default_entity = default_entity
        self.artifact_calls: list[str] = []
        self.run_calls: list[str] = []

    def artifact(self, name: str, type: str | None = None) -> FakeArtifact:
        self.artifact_calls.append(name)
        if name not in self.artifacts:
            entity_project, _, short = name.rpartition("/")
            raise ValueError(f"artifact membership {short!r} not found in {entity_project!r}")
        return self.artifacts[name]

    def run(self, path: str = "") -> FakePublicRun:
        self.run_calls.append(path)
        if path not in self.runs:
            raise ValueError(f"Could not find run {path}")
        return self.runs[path]


class FakeConfig:
    """``wandb.Run.config``: ``get``, ``[]`` and ``update(d, allow_val_change=)``."""

    def __init__(self, data: dict[str, Any] | None = None):
        self.data = dict(data or {})
        self.updates: list[tuple[dict, Any]] = []

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def update(self, d: dict[str, Any], allow_val_change: bool | None = None) -> None:
        self.updates.append((d, allow_val_change))
        self.data.update(d)


class FakeRun:
    """``wandb.Run`` as ``runchain.start`` and ``runchain.log`` use it."""

    def __init__(self, run_id: str = CHILD, project: str = "proj", entity: str = "ent",
                 config: dict[str, Any] | None = None, use_artifact_error: Exception | None = None):
        self.id = run_id
        self.project = project
        self.entity = entity
        self.config = FakeConfig(config)
        self.use_artifact_error = use_artifact_error
        self.use_artifact_calls: list[tuple[str, str | None]] = []
        self.define_metric_calls: list[tuple[str, str | None]] = []
        self.finish_calls: list[int | None] = []
        self.log_calls: list[tuple[dict, int | None]] = []

    def use_artifact(self, name: str, type: str | None = None) -> None:
        self.use_artifact_calls.append((name, type))
        if self.use_artifact_error is not None:
            raise self.use_artifact_error

    def define_metric(self, name: str, step_metric: str | None = None) -> None:
        self.define_metric_calls.append((name, step_metric))

    def finish(self, exit_code: int | None = None) -> None:
        self.finish_calls.append(exit_code)

    def log(self, data: dict[str, Any], step: int | None = None) -> None:
        self.log_calls.append((data, step))


def parent_artifact(**kwargs: Any) -> FakeArtifact:
    kwargs.setdefault("producer", FakeProducer(PARENT, {"lr": 0.01, "runchain": ROOT_CRUMBS}))
    return FakeArtifact(**kwargs)


def load(ref: str, api: FakeApi, **kwargs: Any) -> runchain.Checkpoint:
    return runchain.load_checkpoint(ref, mode="online", api=api, **kwargs)


# -- load_checkpoint online: every reference form --------------------------------

@pytest.mark.parametrize("ref, kwargs, path", [
    (f"ent/proj/run-{PARENT}-checkpoint:step-39", {"project": "other", "entity": "other-ent"},
     f"ent/proj/run-{PARENT}-checkpoint:step-39"),
    (f"proj/run-{PARENT}-checkpoint:step-39", {"project": "other", "entity": "ent"},
     f"ent/proj/run-{PARENT}-checkpoint:step-39"),
    (f"run-{PARENT}-checkpoint:v1", {"project": "proj", "entity": "ent"},
     f"ent/proj/run-{PARENT}-checkpoint:v1"),
    (f"{PARENT}@39", {"project": "proj", "entity": "ent"},
     f"ent/proj/run-{PARENT}-checkpoint:step-39"),
    (f"{PARENT}", {"project": "proj", "entity": "ent"},
     f"ent/proj/run-{PARENT}-checkpoint:latest"),
], ids=["entity/project/name:alias", "project/name:alias", "name:version", "id@step", "id"])
def test_load_online_asks_api_for_full_path_and_pins_step_alias(ref, kwargs, path):
    art = parent_artifact(version="v3")
    api = FakeApi({path: art})

    ckpt = load(ref, api, **kwargs)

    assert api.artifact_calls == [path]
    assert art.get_entry_calls == ["checkpoint.json"]
    assert ckpt.online is True
    assert ckpt.run_id == PARENT
    assert ckpt.step == 39
    assert ckpt.version == "v3"
    assert ckpt.state == {"step": 39, "model": [1, 2]}
    assert ckpt.run_breadcrumbs == runchain.Breadcrumbs(**ROOT_CRUMBS)
    assert ckpt.ref == runchain.CheckpointRef(PARENT, "step-39", "ent", "proj")
    assert str(ckpt.ref) == f"ent/proj/run-{PARENT}-checkpoint:step-39"
    assert ckpt.artifact is art  # kept for checkpoint.artifact.download()


def test_load_online_takes_entity_from_api_default_when_ref_and_caller_give_none():
    path = f"team-default/proj/run-{PARENT}-checkpoint:step-39"
    api = FakeApi({path: parent_artifact()}, default_entity="team-default")

    ckpt = load(f"{PARENT}@39", api, project="proj")

    assert api.artifact_calls == [path]
    assert ckpt.ref.entity == "team-default"
    assert ckpt.ref.project == "proj"


def test_load_online_caller_entity_beats_api_default():
    path = f"mine/proj/run-{PARENT}-checkpoint:latest"
    api = FakeApi({path: parent_artifact()}, default_entity="team-default")

    ckpt = load(PARENT, api, project="proj", entity="mine")

    assert api.artifact_calls == [path]
    assert ckpt.ref.entity == "mine"


def test_load_online_downloads_checkpoint_json_into_a_temporary_root_it_removes():
    art = parent_artifact()
    api = FakeApi({f"ent/proj/run-{PARENT}-checkpoint:latest": art})

    load(PARENT, api, project="proj", entity="ent")

    (root,) = art.manifest.entries["checkpoint.json"].downloads
    assert root is not None
    assert not os.path.exists(root)


def test_load_online_lists_files_with_reference_uris_for_references():
    extra = {"weights/model.bin": FakeEntry("weights/model.bin", "x"),
             "big.bin": FakeEntry("big.bin", ref="s3://bucket/big.bin")}
    api = FakeApi({f"ent/proj/run-{PARENT}-checkpoint:latest":
                   parent_artifact(extra_entries=extra)})

    ckpt = load(PARENT, api, project="proj", entity="ent")

    assert ckpt.files == {"weights/model.bin": "weights/model.bin",
                          "big.bin": "s3://bucket/big.bin",
                          "checkpoint.json": "checkpoint.json"}


@pytest.mark.parametrize("producer", [
    None,
    FakeProducer(PARENT, {"lr": 0.01}),
    FakeProducer(PARENT, {"runchain": {"depth": 1}}),
], ids=["no-producer", "plain-wandb-config", "malformed-breadcrumbs"])
def test_load_online_parent_without_usable_breadcrumbs_has_none(producer):
    api = FakeApi({f"ent/proj/run-{PARENT}-checkpoint:latest": FakeArtifact(producer=producer)})

    ckpt = load(PARENT, api, project="proj", entity="ent")

    assert ckpt.run_breadcrumbs is None
    assert ckpt.step == 39


def test_load_online_without_project_fails_before_asking_api():
    api = FakeApi()

    with pytest.raises(runchain.CheckpointNotFoundError, match="names no project"):
        load(f"{PARENT}@39", api)
    assert api.artifact_calls == []


# -- load_checkpoint online: errors ------------------------------------------------

def test_load_online_comm_error_raises_not_found_naming_the_path():
    class CommErrorApi(FakeApi):
        def artifact(self, name, type=None):
            self.artifact_calls.append(name)
            raise wandb.errors.CommError("artifact membership not found")

    with pytest.raises(runchain.CheckpointNotFoundError, match=f"ent/proj/run-{PARENT}-checkpoint"):
        load(f"{PARENT}@39", CommErrorApi(), project="proj", entity="ent")


@pytest.fixture
def no_credentials(monkeypatch, tmp_path):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.delenv("WANDB_IDENTITY_TOKEN_FILE", raising=False)
    monkeypatch.delenv("WANDB_BASE_URL", raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-such-netrc"))
    # never let a test reach wandb.Api() (and the network) by accident
    assert credential_source() is None


def test_load_online_without_credentials_or_api_raises_credentials_error(no_credentials):
    with pytest.raises(runchain.CredentialsError, match="wandb login"):
        runchain.load_checkpoint(f"{PARENT}@39", mode="online", project="proj", entity="ent")


def test_checkpoint_steps_online_without_credentials_or_api_raises_credentials_error(
        no_credentials, tmp_path):
    with pytest.raises(runchain.CredentialsError):
        runchain.checkpoint_steps(PARENT, mode="online", project="proj", wandb_dir=tmp_path)


# -- start(): the input edge, online ---------------------------------------------

def online_checkpoint(project: str = "proj", entity: str = "ent", version: str = "v3",
                      producer_config: dict | None = None) -> runchain.Checkpoint:
    config = {"runchain": ROOT_CRUMBS} if producer_config is None else producer_config
    path = f"{entity}/{project}/run-{PARENT}-checkpoint:step-39"
    api = FakeApi({path: parent_artifact(version=version,
                                         producer=FakeProducer(PARENT, config))})
    return load(f"{PARENT}@39", api, project=project, entity=entity)


def test_start_online_attaches_input_edge_pinned_to_version():
    run = FakeRun()

    runchain.start(run, online_checkpoint(version="v3"))

    assert run.use_artifact_calls == [(f"ent/proj/run-{PARENT}-checkpoint:v3", "checkpoint")]
    assert run.finish_calls == []


def test_start_online_writes_breadcrumbs_continuing_parent_axis():
    run = FakeRun()

    crumbs = runchain.start(run, online_checkpoint())

    expected = {
        "parent_run": PARENT,
        "parent_checkpoint": f"run-{PARENT}-checkpoint:step-39",  # short: same entity/project
        "parent_step": 39,
        "global_offset": 100 + 39 + 1,
        "root_run": "root0000",
        "depth": 3,
    }
    assert run.config.updates == [({"runchain": expected}, True)]
    assert crumbs == runchain.Breadcrumbs(**expected)


def test_start_online_parent_in_other_project_records_full_checkpoint_ref():
    run = FakeRun(project="proj")

    crumbs = runchain.start(run, online_checkpoint(project="elsewhere"))

    assert run.use_artifact_calls == [
        (f"ent/elsewhere/run-{PARENT}-checkpoint:v3", "checkpoint")]
    assert crumbs.parent_checkpoint == f"ent/elsewhere/run-{PARENT}-checkpoint:step-39"
    assert run.config["runchain"]["parent_checkpoint"] == crumbs.parent_checkpoint


def test_start_online_plain_wandb_parent_counts_as_root():
    run = FakeRun()

    crumbs = runchain.start(run, online_checkpoint(producer_config={"lr": 0.1}))

    assert run.config["runchain"] == {
        "parent_run": PARENT, "parent_checkpoint": f"run-{PARENT}-checkpoint:step-39",
        "parent_step": 39, "global_offset": 40, "root_run": PARENT, "depth": 1}
    assert crumbs.global_offset == 40


def test_start_online_declares_global_step_as_step_metric_of_every_key():
    run = FakeRun()

    runchain.start(run, online_checkpoint())

    assert run.define_metric_calls == [("global_step", None), ("*", "global_step")]


def test_start_online_use_artifact_failure_finishes_run_failed_and_raises_runchain_error():
    error = wandb.errors.CommError("network down")
    run = FakeRun(use_artifact_error=error)

    with pytest.raises(runchain.RunchainError, match="network down") as info:
        runchain.start(run, online_checkpoint())

    assert info.value.__cause__ is error  # the wandb error is kept as the cause
    assert len(run.use_artifact_calls) == 1
    assert run.finish_calls == [1]
    assert "runchain" not in run.config.data  # no breadcrumbs claim an edge that was not recorded
    assert run.define_metric_calls == []


def test_start_online_resume_in_place_records_no_edge_and_keeps_breadcrumbs():
    own = dict(ROOT_CRUMBS)
    run = FakeRun(run_id=PARENT, config={"runchain": own})

    crumbs = runchain.start(run, online_checkpoint())

    assert run.use_artifact_calls == []
    assert crumbs == runchain.Breadcrumbs(**own)
    assert run.config["runchain"] == own


def test_log_before_start_raises_runchain_error_and_logs_nothing():
    run = FakeRun()

    with pytest.raises(runchain.RunchainError, match="runchain.start"):
        runchain.log(run, {"train/loss": 0.5}, step=0)
    assert run.log_calls == []


# -- checkpoint_steps online -----------------------------------------------------

def logged(step: Any, type: str = "checkpoint", name: str = f"run-{PARENT}-checkpoint",
           checkpoint_json: str | None = '{"step": 39}') -> FakeArtifact:
    return FakeArtifact(type=type, metadata={} if step is None else {"step": step}, name=name,
                        checkpoint_json=checkpoint_json)


def test_checkpoint_steps_online_falls_back_to_logged_artifacts_sorted(tmp_path):
    """Any artifact counts, whatever its type and name: its metadata step (an integer), else
    its checkpoint.json's; one of type checkpoint whose step cannot be known is left out, and
    one of another type with neither is no checkpoint."""
    remote = FakePublicRun([logged(99), logged(49), logged(149), logged(49),
                            logged(10, type="model"),  # metadata first: its checkpoint.json says 39
                            logged(3, type="dataset", checkpoint_json=None),  # a metadata step
                            logged(None, type="dataset"),  # its checkpoint.json says 39
                            logged(None, type="dataset", checkpoint_json=None),  # no step at all
                            logged(None, checkpoint_json='{"step": 5, "model": 1}'),
                            logged(True, checkpoint_json='{"step": 6}'),  # bad metadata step
                            logged("7", checkpoint_json=None),  # no step anywhere: left out
                            logged(7, name="my-model-ckpt")])  # another collection counts too
    api = FakeApi(runs={f"me/proj/{PARENT}": remote}, default_entity="me")

    steps = runchain.checkpoint_steps(PARENT, mode="online", project="proj", api=api,
                                      wandb_dir=tmp_path)

    assert steps == [3, 5, 6, 7, 10, 39, 49, 99, 149]
    assert api.run_calls == [f"me/proj/{PARENT}"]


def test_checkpoint_steps_online_uses_caller_entity(tmp_path):
    api = FakeApi(runs={f"ent/proj/{PARENT}": FakePublicRun([logged(3)])}, default_entity="me")

    assert runchain.checkpoint_steps(PARENT, mode="online", project="proj", entity="ent",
                                     api=api, wandb_dir=tmp_path) == [3]
    assert api.run_calls == [f"ent/proj/{PARENT}"]


def test_checkpoint_steps_online_without_project_fails_before_asking_api(tmp_path):
    api = FakeApi(runs={f"me/None/{PARENT}": FakePublicRun([logged(3)])})

    with pytest.raises(runchain.RunNotFoundError, match="needs a project"):
        runchain.checkpoint_steps(PARENT, mode="online", api=api, wandb_dir=tmp_path)
    assert api.run_calls == []


def test_checkpoint_steps_offline_never_asks_api(tmp_path):
    api = FakeApi(runs={f"me/proj/{PARENT}": FakePublicRun([logged(3)])})

    with pytest.raises(runchain.RunNotFoundError):
        runchain.checkpoint_steps(PARENT, mode="offline", project="proj", api=api,
                                  wandb_dir=tmp_path)
    assert api.run_calls == []


# -- for real: artifacts logged online to the HTTP stand-in of W&B -------------------

slow = pytest.mark.slow  # real runs in a subprocess (docs/development.md)
REAL = "standins-real"  # on the server shared by every test module of a worker
LOGGER, MODEL, DATASET = "logger01", "model001", "dataset1"  # run ids
MALFORMED = ["not json {", '{"model": [1, 2]}', '{"step": -1}', '{"step": 3.5}', '{"step": "3"}',
             '{"step": true}', '{"step": null}', "[39]"]
MALFORMED_IDS = ["not-json", "no-step", "negative", "float", "string", "bool", "null", "array"]
NO_JSON, DISAGREES, GOOD = len(MALFORMED), len(MALFORMED) + 1, len(MALFORMED) + 2  # versions
# run id -> its artifacts: (name, type, {file: text}, metadata, aliases), logged in order
LOGGED = {
    LOGGER: [*[(f"run-{LOGGER}-checkpoint", "checkpoint", {"checkpoint.json": text}, None, [])
               for text in MALFORMED],
             (f"run-{LOGGER}-checkpoint", "checkpoint", {"weights.npy": "w"}, None, []),
             (f"run-{LOGGER}-checkpoint", "checkpoint", {"checkpoint.json": '{"step": 39}'},
              {"step": 40}, []),
             (f"run-{LOGGER}-checkpoint", "checkpoint",
              {"checkpoint.json": '{"step": 39, "model": [1, 2]}', "weights.npy": "the weights"},
              {"step": 39}, ["step-39"])],
    MODEL: [(f"run-{MODEL}-checkpoint", "model", {"checkpoint.json": '{"step": 3}'}, None, [])],
    DATASET: [("data", "dataset", {"rows.csv": "a,b\n"}, None, [])],
}
LOG = """
import json, sys, wandb
for run_id, artifacts in json.loads(sys.argv[2]).items():
    run = wandb.init(project=sys.argv[1], id=run_id)
    for step in range(40):
        run.log({"loss": 1.0 / (step + 1)}, step=step)
    for name, type_, files, metadata, aliases in artifacts:
        artifact = wandb.Artifact(name, type=type_, metadata=metadata)
        for path, text in files.items():
            with artifact.new_file(path) as f:
                f.write(text)
        run.log_artifact(artifact, aliases=aliases)
    run.finish()
"""


@pytest.fixture(scope="module")
def logged_online(wandb_server, tmp_path_factory):
    """``LOGGED``, logged online by the real SDK to the HTTP stand-in, project ``REAL``."""
    with pytest.MonkeyPatch.context() as mp:
        isolate(mp, tmp_path_factory.mktemp("standins_real"), server=wandb_server)
        proc = subprocess.run([sys.executable, "-c", LOG, REAL, json.dumps(LOGGED)],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return {"env": dict(os.environ), "cwd": os.getcwd()}


@pytest.fixture
def real(logged_online, wandb_server, monkeypatch):
    """In the environment the artifacts were logged in; returns their entity/project."""
    step_into(logged_online, monkeypatch)
    return f"{wandb_server.entity}/{REAL}"


def load_real(ref: str) -> runchain.Checkpoint:
    return runchain.load_checkpoint(ref, mode="online", project=REAL)


@slow
@pytest.mark.parametrize("version", range(len(MALFORMED)), ids=MALFORMED_IDS)
def test_load_online_malformed_checkpoint_json_raises_checkpoint_error(real, version):
    path = f"{real}/run-{LOGGER}-checkpoint:v{version}"

    with pytest.raises(runchain.CheckpointError) as info:
        load_real(f"run-{LOGGER}-checkpoint:v{version}")
    assert path in str(info.value) and "checkpoint.json" in str(info.value)


@slow
def test_load_online_without_checkpoint_json_raises_checkpoint_error(real):
    with pytest.raises(runchain.CheckpointError, match="has no checkpoint.json"):
        load_real(f"run-{LOGGER}-checkpoint:v{NO_JSON}")


@slow
def test_load_online_metadata_step_disagreeing_with_checkpoint_json_raises_checkpoint_error(real):
    with pytest.raises(runchain.CheckpointError, match="metadata step 40") as info:
        load_real(f"run-{LOGGER}-checkpoint:v{DISAGREES}")
    assert f"{real}/run-{LOGGER}-checkpoint:v{DISAGREES}" in str(info.value)


@slow
def test_load_online_metadata_step_agreeing_with_checkpoint_json_loads(real):
    ckpt = load_real(f"run-{LOGGER}-checkpoint:v{GOOD}")

    assert ckpt.step == 39 and ckpt.version == f"v{GOOD}" and ckpt.online
    assert ckpt.state == {"step": 39, "model": [1, 2]}
    assert str(ckpt.ref) == f"{real}/run-{LOGGER}-checkpoint:step-39"
    assert ckpt.run_breadcrumbs is None  # plain wandb code logged it


@slow
def test_load_online_wrong_artifact_type_raises_checkpoint_error(real):
    with pytest.raises(runchain.CheckpointError, match="type 'model'") as info:
        load_real(f"run-{MODEL}-checkpoint:v0")
    assert f"{real}/run-{MODEL}-checkpoint:v0" in str(info.value)


@slow
@pytest.mark.parametrize("ref", [f"{LOGGER}@77", "nosuch99@39"], ids=["no-such-step", "no-such-run"])
def test_load_online_missing_artifact_raises_not_found_naming_the_path(real, ref):
    run_id, step = ref.split("@")

    with pytest.raises(runchain.CheckpointNotFoundError) as info:
        load_real(ref)

    assert f"{real}/run-{run_id}-checkpoint:step-{step}" in str(info.value)
    assert isinstance(info.value, LookupError)


@slow
def test_checkpoint_steps_online_unknown_run_raises_run_not_found(real, tmp_path):
    with pytest.raises(runchain.RunNotFoundError, match=f"{real}/nosuch99"):
        runchain.checkpoint_steps("nosuch99", mode="online", project=REAL, wandb_dir=tmp_path)


@slow
def test_checkpoint_steps_online_run_without_checkpoints_raises_not_found(real, tmp_path):
    with pytest.raises(runchain.CheckpointNotFoundError, match=DATASET):
        runchain.checkpoint_steps(DATASET, mode="online", project=REAL, wandb_dir=tmp_path)


@slow
def test_checkpoint_files_load_online_with_the_same_code_as_offline(real, tmp_path, monkeypatch):
    """``checkpoint.path(name)`` downloads the one file and returns where; ``download()``
    fetches them all. See test_checkpoint_files.py for the same calls offline."""
    monkeypatch.chdir(tmp_path)  # wandb downloads into ./artifacts
    ckpt = load_real(f"{LOGGER}@39")
    assert ckpt.version == f"v{GOOD}"

    assert ckpt.path("weights.npy").read_text() == "the weights"
    with pytest.raises(runchain.CheckpointError, match="no file 'weights.pt'; close matches"):
        ckpt.path("weights.pt")
    folder = ckpt.download(tmp_path / "all")
    assert (folder / "weights.npy").read_text() == "the weights"
    assert json.loads((folder / "checkpoint.json").read_text()) == ckpt.state


def test_an_expanded_star_declaration_is_the_axis_of_every_metric_the_run_logged():
    """A sender that uploads ``define_metric("*", ...)`` expanded, one entry per metric,
    declares nothing for a key set only in ``run.summary`` (the Trainer's ``train_runtime``):
    the run's listed ``historyKeys`` say which metrics it logged. A declaration for some
    metrics (``val/*``) is no axis of the run."""
    from runchain.readers.from_project import _declared

    class Listed:  # a listed public Run: config, summary, and the listed historyKeys
        config = {}
        summary_metrics = {"loss": 1.0, "gs": 3, "train_runtime": 1.5, "_step": 3}
        historyKeys = {"keys": {"loss": {}, "gs": {}, "_step": {}}, "lastStep": 3}

    star = {"_wandb": {"m": [{"1": "gs"}, {"1": "loss", "5": 1}]}}
    some = {"_wandb": {"m": [{"1": "gs"}, {"1": "val/loss", "5": 1}]}}
    assert _declared(Listed(), star) == "gs"
    assert _declared(Listed(), some) is None
    Listed.historyKeys = None  # a listing without it: the summary's keys, train_runtime too
    assert _declared(Listed(), star) is None

