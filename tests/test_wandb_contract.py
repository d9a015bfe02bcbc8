"""Contract with the INSTALLED wandb: every attribute and call runchain makes exists, with
the arguments runchain passes.

``CALLS`` lists each use as (use, owner, attribute, args, kwargs): the call is checked with
``inspect.signature(...).bind`` so a renamed or removed parameter fails here, not in a
user's training run. ``ATTRS`` lists the properties and fields read. ``RECORD_FIELDS``
lists the ``wandb_internal_pb2.Record`` fields ``record_log.py`` reads. The ``test_table_*``
tests scan runchain's source with ``ast`` so the tables cannot silently fall behind it.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import json
import re
import typing
from pathlib import Path
from typing import Any

import click
import pytest
import wandb
from google.protobuf.descriptor import FieldDescriptor
import wandb.apis.public
import wandb.apis.public.runs
import wandb.sdk.lib.service.service_connection
import wandb.sdk.wandb_config
import wandb.sdk.wandb_run
import wandb.sdk.wandb_summary
import wandb.sdk.artifacts._generated
import wandb.sdk.artifacts._generated.operations
import wandb.sdk.artifacts._gqlutils
import wandb.sdk.artifacts._validators
import wandb.sdk.artifacts.artifact
from wandb.proto import wandb_internal_pb2 as pb
from wandb.sdk.artifacts.artifact_manifest import ArtifactManifest
from wandb.sdk.artifacts.artifact_manifest_entry import ArtifactManifestEntry

import runchain
import runchain.commands.sync
from helpers import need

REPO = Path(__file__).resolve().parents[1]
SOURCES = sorted((REPO / "runchain").rglob("*.py")) + [REPO / "do_run.py", REPO / "do_many.py"]

Run = wandb.sdk.wandb_run.Run
Config = wandb.sdk.wandb_config.Config
Artifact = wandb.Artifact
Api = wandb.Api
PublicRun = wandb.apis.public.Run
PublicRuns = wandb.apis.public.Runs

SELF = object()  # placeholder for ``self`` when binding a method's signature

# (use in runchain's source, owner, attribute, args, kwargs). A module's function is
# bound as is; a module's class through its __init__ with SELF first; a class's
# attribute is a method and binds SELF first (unless static or class method).
CALLS: list[tuple[str, Any, str, tuple, dict]] = [
    ("wandb.init", wandb, "init", (),
     {"project": "p", "id": "abc", "name": "root", "tags": [], "config": {}, "mode": "offline",
      "job_type": "train"}),
    ("wandb.init", wandb, "init", (),  # publish.py: the chain-view run
     {"project": "p", "entity": None, "job_type": "chain-view", "name": "chain-abc",
      "tags": ["root:r", "leaf:abc"], "config": {}, "mode": "offline", "settings": None}),
    ("wandb.Settings", wandb, "Settings", (), {"silent": True, "console": "off"}),
    # in_place.py's resume_args, through do_run.py: a resume in place, or a rewind
    ("wandb.init", wandb, "init", (), {"project": "p", "id": "abc", "resume": "must"}),
    ("wandb.init", wandb, "init", (), {"project": "p", "resume_from": "abc?_step=49"}),
    ("run.log", Run, "log", ({"global_step": 3, "run_id": "abc"},), {"step": 3}),
    ("wandb.Api", wandb, "Api", (), {}),
    ("wandb.Artifact", wandb, "Artifact", ("run-abc-checkpoint",),
     {"type": "checkpoint", "metadata": {"step": 3}}),
    ("artifact.add_file", Artifact, "add_file", ("/tmp/w.bin",), {}),
    ("artifact.add_dir", Artifact, "add_dir", ("/tmp/weights",), {"name": "weights"}),
    ("artifact.add_reference", Artifact, "add_reference", ("s3://bucket/w.bin",), {}),
    ("artifact.new_file", Artifact, "new_file", ("checkpoint.json",), {}),
    ("artifact.get_entry", Artifact, "get_entry", ("checkpoint.json",), {}),
    ("artifact.logged_by", Artifact, "logged_by", (), {}),
    ("entry.download", ArtifactManifestEntry, "download", (), {"root": "/tmp/x"}),
    ("entry.download", ArtifactManifestEntry, "download", (), {}),  # Checkpoint.path online
    ("artifact.download", Artifact, "download", (), {"root": None}),  # Checkpoint.download
    ("run.log", Run, "log", ({"loss": 1.0, "global_step": 3},), {"step": 3}),
    ("run.log_artifact", Run, "log_artifact", (object(),), {"aliases": ["step-3", "latest"]}),
    ("run.use_artifact", Run, "use_artifact", ("e/p/run-abc-checkpoint:v3",),
     {"type": "checkpoint"}),
    ("run.define_metric", Run, "define_metric", ("global_step",), {}),
    ("run.define_metric", Run, "define_metric", ("*",), {"step_metric": "global_step"}),
    ("run.finish", Run, "finish", (), {}),
    ("run.finish", Run, "finish", (), {"exit_code": 1}),
    ("run.config.update", Config, "update", ({"runchain": {}},), {"allow_val_change": True}),
    ("run.config.get", Config, "get", ("runchain",), {}),
    ("run.config[]", Config, "__getitem__", ("runchain",), {}),
    ("run.summary.get", wandb.sdk.wandb_summary.Summary, "get", ("runchain",), {}),
    ("run.summary[]", wandb.sdk.wandb_summary.Summary, "__setitem__",
     ("runchain", {"checkpoints": [3]}), {}),
    ("api.artifact", Api, "artifact", ("e/p/run-abc-checkpoint:latest",), {}),
    ("api.run", Api, "run", ("e/p/abc",), {}),
    ("remote.logged_artifacts", PublicRun, "logged_artifacts", (), {}),
    # wandb_runs.py: one listing, artifact walks, history scans
    ("api.runs", Api, "runs", ("e/p",), {"per_page": 500, "lazy": False}),
    ("run.used_artifacts", PublicRun, "used_artifacts", (), {}),
    ("run.logged_artifacts", PublicRun, "logged_artifacts", (), {}),
    ("run.scan_history", PublicRun, "scan_history", (),
     {"keys": ["_step", "loss"], "min_step": 0, "page_size": 10_000, "max_step": 40}),
    ("run.scan_history", PublicRun, "scan_history", (),
     {"keys": None, "min_step": 0, "page_size": 10_000}),
    ("run.config.get", dict, "get", ("runchain",), {}),  # the public Run's config is a dict
    ("artifact.name.split", str, "split", (":",), {}),  # "run-<id>-checkpoint:v3"
    ("wandb.proto.wandb_internal_pb2.Record", pb, "Record", (), {}),
    # sync.py: attach an offline run's input edge once it is uploaded (and api.run above)
    ("api.artifact", Api, "artifact", ("e/p/run-abc-checkpoint:step-3",), {"type": "checkpoint"}),
    ("remote.used_artifacts", PublicRun, "used_artifacts", (), {}),
    ("remote.use_artifact", PublicRun, "use_artifact", (object(),), {}),
    # publish.py: the chain's segments as a table
    ("wandb.Table", wandb, "Table", (), {"columns": ["run_id"], "data": [["abc"]]}),
    # project_lineage.py: a page of runs' artifacts, each built as wandb's RunArtifacts does
    ("wandb.sdk.artifacts.artifact.Artifact._from_attrs", Artifact, "_from_attrs", (),
     {"path": object(), "src_art": object(), "service_api": object()}),
    ("wandb.sdk.artifacts._generated.ArtifactFragment.model_validate",
     wandb.sdk.artifacts._generated.ArtifactFragment, "model_validate", ({},), {}),
    ("wandb.sdk.artifacts._gqlutils.omit_artifact_fields", wandb.sdk.artifacts._gqlutils,
     "omit_artifact_fields", (object(),), {}),
    # project_history.py: scan_history's own scan, bounded by the listed last step
    ("wandb.apis.public.HistoryScan", wandb.apis.public, "HistoryScan", (),
     {"run": object(), "service_api": object(), "min_step": 0, "max_step": 10, "keys": None,
      "page_size": 10_000}),
]

# (use in runchain's source, owner, attribute, kind): kind "property" is a property of the
# class, "field" a pydantic field of the model, "module" an attribute of the module,
# "instance" an attribute the class sets on its instances, "descriptor" a protobuf
# descriptor attribute.
ATTRS: list[tuple[str, Any, str, str]] = [
    ("artifact.name", Artifact, "name", "property"),  # "collection:vN" on a public Artifact
    ("artifact.type", Artifact, "type", "property"),
    ("artifact.version", Artifact, "version", "property"),
    ("artifact.aliases", Artifact, "aliases", "property"),
    ("artifact.metadata", Artifact, "metadata", "property"),
    ("artifact.manifest", Artifact, "manifest", "property"),
    ("artifact.manifest.entries", ArtifactManifest, "entries", "field"),
    ("entry.ref", ArtifactManifestEntry, "ref", "field"),
    ("run.config", Run, "config", "property"),
    ("run.summary", Run, "summary", "instance"),
    ("run.id", Run, "id", "property"),
    ("run.project", Run, "project", "property"),
    ("run.entity", Run, "entity", "property"),
    ("run.offline", Run, "offline", "property"),
    ("run.step", Run, "step", "property"),  # integrations/marker.py: the step of the next log
    ("api.default_entity", Api, "default_entity", "property"),
    ("producer.config", PublicRun, "config", "property"),
    ("producer.id", PublicRun, "id", "property"),
    ("wandb.errors", wandb, "errors", "module"),
    ("wandb.errors.CommError", wandb.errors, "CommError", "module"),
    ("wandb.proto", wandb, "proto", "module"),
    ("wandb.proto.wandb_internal_pb2", wandb.proto, "wandb_internal_pb2", "module"),
    # wandb_runs.py: the public Run and Runs listing, and what a failed request raises
    ("run.id", PublicRun, "id", "property"),
    ("run.name", PublicRun, "name", "property"),  # the display name
    ("run.state", PublicRun, "state", "property"),
    ("run.project", PublicRun, "project", "instance"),
    ("run.url", PublicRun, "url", "property"),
    ("run.config", PublicRun, "config", "property"),
    ("run.summary_metrics", PublicRun, "summary_metrics", "property"),  # a plain dict
    ("run.rawconfig", PublicRun, "rawconfig", "property"),  # config with _wandb (branch_point)
    # a listed field, reached through wandb's Attrs.__getattr__ (its own test below)
    ("getattr(*, 'historyLineCount')", PublicRun, "historyLineCount", "listed"),
    ("getattr(*, 'historyKeys')", PublicRun, "historyKeys", "listed"),
    ("getattr(*, 'heartbeatAt')", PublicRun, "heartbeatAt", "listed"),
    # the page a listing last fetched: where a listed run's raw config is read (wandb 0.31's
    # listed Run drops rawconfig["_wandb"]; readers/from_project.py, _list)
    ("runs.last_response", PublicRuns, "last_response", "instance"),
    ("getattr(*, 'last_response')", PublicRuns, "last_response", "instance"),
    ("runs.entity", PublicRuns, "entity", "instance"),
    ("runs.project", PublicRuns, "project", "instance"),
    ("wandb.errors.Error", wandb.errors, "Error", "module"),
    ("wandb.sdk.lib.service.service_connection.WandbApiFailedError",
     wandb.sdk.lib.service.service_connection, "WandbApiFailedError", "module"),
    ("wandb.proto.wandb_internal_pb2.HistoryItem", pb, "HistoryItem", "module"),
    ("wandb.proto.wandb_internal_pb2.HistoryRecord", pb, "HistoryRecord", "module"),
    # sync.py: is the checkpoint already among the run's used artifacts?
    ("artifact.id", Artifact, "id", "property"),
    # integrations/: the framework callbacks find the run their framework's W&B logger made
    ("wandb.run", wandb, "run", "module"),
    ("run.dir", Run, "dir", "property"),
    # project_lineage.py: wandb's own query text and classes, and the Api's GraphQL client
    ("wandb.sdk", wandb, "sdk", "module"),
    ("wandb.sdk.artifacts", wandb.sdk, "artifacts", "module"),
    ("wandb.sdk.artifacts._generated", wandb.sdk.artifacts, "_generated", "module"),
    ("wandb.sdk.artifacts._generated.operations", wandb.sdk.artifacts._generated, "operations",
     "module"),
    ("wandb.sdk.artifacts._generated.operations.RUN_INPUT_ARTIFACTS_GQL",
     wandb.sdk.artifacts._generated.operations, "RUN_INPUT_ARTIFACTS_GQL", "module"),
    ("wandb.sdk.artifacts._generated.operations.ARTIFACT_CREATED_BY_GQL",
     wandb.sdk.artifacts._generated.operations, "ARTIFACT_CREATED_BY_GQL", "module"),
    ("wandb.sdk.artifacts._generated.ArtifactFragment", wandb.sdk.artifacts._generated,
     "ArtifactFragment", "module"),
    ("wandb.sdk.artifacts._validators.FullArtifactPath", wandb.sdk.artifacts._validators,
     "FullArtifactPath", "module"),
    ("wandb.sdk.artifacts.artifact", wandb.sdk.artifacts, "artifact", "module"),
    ("wandb.sdk.artifacts.artifact.Artifact", wandb.sdk.artifacts.artifact, "Artifact", "module"),
    ("wandb.sdk.artifacts._gqlutils.omit_artifact_fields", wandb.sdk.artifacts._gqlutils,
     "omit_artifact_fields", "module"),
    ("getattr(*, '_service_api')", Api, "_service_api", "instance"),
]
# Not wandb's, but read the same way: Lightning's ModelCheckpoint keeps the path and step of
# its newest file only in private attributes (integrations/lightning.py reads them).
LIGHTNING_ATTRS = ("_last_checkpoint_saved", "_last_global_step_saved")
try:  # the lightning extra, which the test extra leaves out (it needs torch); CI has it
    from lightning.pytorch.callbacks import ModelCheckpoint
except ImportError:
    ModelCheckpoint = None
if ModelCheckpoint is not None:
    ATTRS += [(f"getattr(*, {name!r})", ModelCheckpoint, name, "instance")
              for name in LIGHTNING_ATTRS]

# protobuf descriptors record_log.py and history_columns.py read: the record_type oneof, and
# the field numbers of the flat history view. Each use appears bare and subscripted.
for _message, _table in (("Record", "oneofs_by_name"), ("Record", "fields_by_name"),
                         ("HistoryRecord", "fields_by_name"), ("HistoryItem", "fields_by_name")):
    _use = f"wandb.proto.wandb_internal_pb2.{_message}.DESCRIPTOR"
    _descriptor = getattr(pb, _message).DESCRIPTOR
    ATTRS += [row for row in ((_use, getattr(pb, _message), "DESCRIPTOR", "descriptor"),
                              (f"{_use}.{_table}", _descriptor, _table, "descriptor"),
                              (f"{_use}.{_table}[]", _descriptor, _table, "descriptor"))
              if row not in ATTRS]

# Uses whose value runchain treats as a plain dict (it calls .get or .items on them).
DICT_VALUED = ("artifact.manifest.entries", "producer.config", "run.rawconfig",
               "run.summary_metrics")

# Record fields record_log.py reads, as paths from Record: (path, repeated, type).
RECORD_FIELDS: list[tuple[str, bool, str]] = [
    ("history", False, "message"),
    ("history.item", True, "message"),
    ("history.item.key", False, "string"),
    ("history.item.nested_key", True, "string"),
    ("history.item.value_json", False, "string"),
    ("run", False, "message"),
    ("run.run_id", False, "string"),
    ("run.project", False, "string"),
    ("run.entity", False, "string"),
    ("run.display_name", False, "string"),
    ("run.host", False, "string"),
    ("run.start_time", False, "message"),
    ("run.branch_point", False, "message"),  # wandb.init(fork_from= / resume_from=)
    ("run.branch_point.run", False, "string"),
    ("run.branch_point.value", False, "double"),
    ("run.branch_point.metric", False, "string"),
    ("run.start_time.seconds", False, "int"),
    ("run.start_time.nanos", False, "int"),
    ("run.config", False, "message"),
    ("config", False, "message"),
    ("config.update", True, "message"),
    ("config.update.key", False, "string"),
    ("config.update.nested_key", True, "string"),
    ("config.update.value_json", False, "string"),
    ("config.remove", True, "message"),
    ("config.remove.key", False, "string"),
    ("config.remove.nested_key", True, "string"),
    ("artifact", False, "message"),
    ("artifact.name", False, "string"),
    ("artifact.type", False, "string"),
    ("artifact.aliases", True, "string"),
    ("artifact.metadata", False, "string"),  # JSON text: record_log.py json.loads it
    ("artifact.digest", False, "string"),
    ("artifact.manifest", False, "message"),
    ("artifact.manifest.contents", True, "message"),
    ("artifact.manifest.contents.path", False, "string"),
    ("artifact.manifest.contents.ref", False, "string"),
    ("artifact.manifest.contents.local_path", False, "string"),
    ("exit", False, "message"),
    ("exit.exit_code", False, "int"),
    ("metric", False, "message"),  # run.define_metric(name or glob, step_metric=)
    ("metric.name", False, "string"),
    ("metric.glob_name", False, "string"),
    ("metric.step_metric", False, "string"),
    ("summary", False, "message"),
    ("summary.update", True, "message"),
    ("summary.update.key", False, "string"),
    ("summary.update.nested_key", True, "string"),
    ("summary.update.value_json", False, "string"),
    ("summary.remove", True, "message"),
    ("summary.remove.key", False, "string"),
    ("summary.remove.nested_key", True, "string"),
    ("use_artifact", False, "message"),
    ("use_artifact.type", False, "string"),
    ("use_artifact.name", False, "string"),
]
# record_type kinds record_log.py matches on (it reads the oneof's tag, then compares names)
RECORD_KINDS = ("history", "summary", "run", "config", "artifact", "use_artifact", "exit",
                "metric")
MESSAGE_METHODS = ("ParseFromString", "HasField")


# -- the tables against the installed wandb ------------------------------------------

def _signature_target(owner: Any, name: str) -> tuple[Any, bool]:
    """What to take the signature of, and whether it takes a ``self`` first."""
    target = getattr(owner, name)
    if inspect.ismodule(owner):
        if inspect.isclass(target):
            return target.__init__, True
        return target, False
    if isinstance(inspect.getattr_static(owner, name), (staticmethod, classmethod)):
        return target, False
    return target, True


@pytest.mark.parametrize("use, owner, name, args, kwargs", CALLS,
                         ids=[f"{u}({', '.join(['_'] * len(a) + [k + '=' for k in kw])})"
                              for u, _, _, a, kw in CALLS])
def test_wandb_accepts_the_call_runchain_makes(use, owner, name, args, kwargs):
    assert hasattr(owner, name), f"{use}: {owner!r} has no attribute {name!r}"
    target, takes_self = _signature_target(owner, name)
    assert callable(target), f"{use}: {owner!r}.{name} is not callable"
    signature = inspect.signature(target)
    bound = (SELF, *args) if takes_self else args
    try:
        signature.bind(*bound, **kwargs)
    except TypeError as e:
        pytest.fail(f"{use}: {owner!r}.{name}{signature} rejects args {args!r} kwargs "
                    f"{sorted(kwargs)}: {e}")


@pytest.mark.parametrize("use, owner, name, kind", ATTRS, ids=[row[0] for row in ATTRS])
def test_wandb_has_the_attribute_runchain_reads(use, owner, name, kind):
    if kind == "property":
        assert isinstance(inspect.getattr_static(owner, name, None), property), (
            f"{use}: {owner!r}.{name} is not a property")
    elif kind == "field":
        assert name in owner.model_fields, f"{use}: {owner!r} has no field {name!r}"
    elif kind == "descriptor":
        assert hasattr(owner, name), f"{use}: {owner!r} has no {name!r}"
    elif kind == "listed":  # a field of the listing's GraphQL fragment, read via __getattr__
        assert name in wandb.apis.public.runs.RUN_FRAGMENT and hasattr(owner, "__getattr__")
    elif kind == "instance":  # set on the instance when it is built, e.g. Run.summary
        assert re.search(rf"self\.{name}(: [^=\n]+)? = ", inspect.getsource(owner)), (
            f"{use}: {owner!r} never sets self.{name}")  # annotated or not
    else:
        assert inspect.ismodule(owner) and hasattr(owner, name), f"{use}: no {owner!r}.{name}"


def test_wandb_comm_error_is_an_exception_runchain_can_catch():
    assert isinstance(wandb.errors.CommError, type)
    assert issubclass(wandb.errors.CommError, Exception)


def test_wandb_artifact_manifest_entries_is_a_dict(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "data"))
    artifact = wandb.Artifact("run-abc-checkpoint", type="checkpoint")
    with artifact.new_file("checkpoint.json") as f:
        f.write('{"step": 0}')
    entries = artifact.manifest.entries
    assert isinstance(entries, dict)
    assert isinstance(entries["checkpoint.json"], ArtifactManifestEntry)


def test_wandb_public_run_config_is_a_dict():
    fget = inspect.getattr_static(PublicRun, "config").fget
    returns = inspect.signature(fget, eval_str=True).return_annotation
    assert typing.get_origin(returns) is dict or returns is dict, returns


def test_wandb_public_run_rawconfig_is_a_dict_holding_the_branch_point():
    """readers/project.py reads a fork's branch point from ``rawconfig["_wandb"]``; wandb.init
    writes it there as {"run_id", "step"}, and keeps ``_wandb`` out of ``Run.config``."""
    fget = inspect.getattr_static(PublicRun, "rawconfig").fget
    returns = inspect.signature(fget, eval_str=True).return_annotation
    assert typing.get_origin(returns) is dict or returns is dict, returns
    init = inspect.getsource(wandb.sdk.wandb_init)
    assert '"branch_point"' in init and '"run_id"' in init and '"step"' in init


def test_wandb_public_run_summary_metrics_is_a_dict():
    """wandb_runs.py reads ``summary_metrics``: ``run.summary`` wraps nested dicts instead."""
    fget = inspect.getattr_static(PublicRun, "summary_metrics").fget
    returns = inspect.signature(fget, eval_str=True).return_annotation
    assert typing.get_origin(returns) is dict or returns is dict, returns


# What wandb_runs.py's request counts and cuts rest on, as the installed wandb documents or
# implements it. A failure here means a premise changed: re-read the reader, not just the test.

def test_wandb_runs_listing_carries_config_and_summary_only_when_not_lazy():
    runs = wandb.apis.public.runs
    for field in ("config", "summaryMetrics"):
        assert field in runs.RUN_FRAGMENT  # lazy=False: in every page of the listing
        assert field not in runs.LIGHTWEIGHT_RUN_FRAGMENT  # lazy=True: one request per run


def test_wandb_runs_page_holds_each_run_under_project_runs_edges_node():
    """readers/project.py reads a listed run's raw config from the page itself
    (``runs.last_response["project"]["runs"]["edges"][i]["node"]["config"]``), since a Run
    built from a listing loses ``rawconfig["_wandb"]``: the shape ``convert_objects`` reads."""
    source = inspect.getsource(PublicRuns.convert_objects)
    assert 'get("project")' in source and 'get("runs")' in source and 'get("edges")' in source
    assert 'run_response["node"]' in source
    assert "config" in wandb.apis.public.runs.RUN_FRAGMENT


def test_wandb_runs_listing_carries_the_history_line_count():
    """A plain child's rows start at 0 when its line count is its last ``_step`` + 1, so the
    W&B reader reads ``run.historyLineCount`` (an attribute from the listed fields)."""
    runs = wandb.apis.public.runs
    assert "historyLineCount" in runs.RUN_FRAGMENT
    assert "historyLineCount" in runs.LIGHTWEIGHT_RUN_FRAGMENT
    run = PublicRun.__new__(PublicRun)
    run._attrs = {"historyLineCount": 7}
    assert getattr(run, "historyLineCount", None) == 7


def test_wandb_runs_listing_carries_the_history_keys():
    """Which metrics a run logged, against those only set in its summary: the W&B reader's
    rule for a ``define_metric`` axis declared for all of them (``_history_keys``) reads
    ``run.historyKeys`` from the listed fields (not the lazy listing's)."""
    assert "historyKeys" in wandb.apis.public.runs.RUN_FRAGMENT
    run = PublicRun.__new__(PublicRun)
    run._attrs = {"historyKeys": {"keys": {"loss": {}}, "lastStep": 3}}
    assert getattr(run, "historyKeys", None) == {"keys": {"loss": {}}, "lastStep": 3}


def test_wandb_runs_listing_carries_what_keys_a_cached_history():
    """The disk cache of W&B histories (``project_cache.run_key``) checks an entry against the
    listed state, ``historyLineCount``, ``heartbeatAt`` and ``historyKeys``: all in the
    listing's fragment, so a warm read costs no request per run. ``updatedAt``, which the
    issue named, is not there."""
    fragment = wandb.apis.public.runs.RUN_FRAGMENT
    for field in ("state", "historyLineCount", "heartbeatAt", "historyKeys"):
        assert field in fragment.split(), field
    assert "updatedAt" not in fragment
    run = PublicRun.__new__(PublicRun)
    run._attrs = {"heartbeatAt": "2026-12-07T10:00:00"}
    assert getattr(run, "heartbeatAt", None) == "2026-12-07T10:00:00"


def test_wandb_last_history_step_is_a_request_per_run():
    """So the listing takes the last step from the summary's ``_step`` instead."""
    assert isinstance(inspect.getattr_static(PublicRun, "lastHistoryStep"), property)
    assert "self._exec(" in inspect.getsource(PublicRun.lastHistoryStep.fget)


def test_wandb_scan_history_keys_keep_only_rows_holding_every_key():
    """So wandb_runs.py scans one key at a time; and max_step is exclusive (cut + 1)."""
    doc = " ".join(PublicRun.scan_history.__doc__.split())
    assert "only returns rows that contain all of the requested keys" in doc
    assert "min_step: The minimum step to start reading history from (inclusive)" in doc
    assert "max_step: The maximum step to read history up to (exclusive)" in doc


def test_wandb_settings_parse_the_resume_arguments_in_place_py_builds():
    """``in_place_init``'s arguments are what wandb validates them as: ``resume="must"``,
    and a rewind point ``R?_step=S`` read back as run R, value S on ``_step``; the two are
    never passed together (wandb refuses that)."""
    def settings(init_args):  # wandb.init(id=) is Settings(run_id=)
        return wandb.Settings(**{("run_id" if k == "id" else k): v for k, v in init_args.items()})

    assert settings(runchain.in_place_init("abc", 49, 10)).resume == "must"
    moment = settings(runchain.in_place_init("abc", 49, 99, rewind=True)).resume_from
    assert (moment.run, moment.value, moment.metric) == ("abc", 49, "_step")
    with pytest.raises(ValueError, match="mutually exclusive"):
        wandb.Settings(resume="must", resume_from="abc?_step=49")


def test_wandb_runs_listing_of_an_unknown_project_raises_value_error():
    """wandb_runs.py turns that ValueError into ProjectNotFoundError."""
    source = inspect.getsource(PublicRuns.convert_objects)
    assert 'raise ValueError("Could not find project' in source


# What runchain sync rests on: wandb's own ``wandb sync`` (run as ``python -m wandb sync``),
# its ``.synced`` marker and folder names, and how the public API reports what is missing.

def _sync_context(args: list[str]) -> click.Context:
    """Parse ``wandb sync ARGS`` with the installed wandb's click command, running nothing."""
    from wandb.cli import cli as wandb_cli
    return wandb_cli.sync.make_context("sync", list(args))


def test_wandb_sync_accepts_the_arguments_runchain_passes(tmp_path):
    folders = [tmp_path / "offline-run-20260101_000000-abc", tmp_path / "offline-run-20260102_000000-abc"]
    for folder in folders:
        folder.mkdir()
    args = runchain.commands.sync.wandb_sync_args(folders, "ent", "proj")

    ctx = _sync_context(args)

    assert ctx.params["entity"] == "ent" and ctx.params["project"] == "proj"
    assert ctx.params["paths"] == tuple(map(str, folders))
    from wandb.cli import cli as wandb_cli
    passed = {a for a in args if a.startswith("-")}
    for param in wandb_cli.sync.params:
        if passed & set(param.opts + param.secondary_opts):
            assert not param.hidden, f"wandb sync {param.opts}: hidden (a removed option)"
        elif getattr(param, "hidden", False):  # removed options: passing one is an error
            assert ctx.params[param.name] is None, param.name
    # wandb sync skips folders it marked synced, and online (run-*) ones, unless told not to
    assert ctx.params["include_synced"] is None and ctx.params["include_online"] is None
    assert importlib.util.find_spec("wandb.__main__") is not None  # python -m wandb


def test_wandb_sync_marker_is_the_one_runchain_reads(tmp_path):
    from wandb.cli import beta_sync
    folder = tmp_path / "offline-run-20260101_000000-abc"
    folder.mkdir()
    run_file = folder / "run-abc.wandb"
    run_file.write_bytes(b"")

    assert not beta_sync._is_synced(run_file) and not runchain.commands.sync.is_synced(run_file)
    (folder / "run-abc.wandb.synced").touch()  # the name wandb-core's markSynced writes
    assert beta_sync._is_synced(run_file) and runchain.commands.sync.is_synced(run_file)
    # wandb treats run-* folders as logged online, as runchain sync's plan does
    assert not beta_sync._is_online(run_file)
    online = tmp_path / "run-20260101_000000-def"
    online.mkdir()
    assert beta_sync._is_online(online / "run-def.wandb")
    assert runchain.commands.sync.OFFLINE_PREFIX == "offline-" and not online.name.startswith("offline-")


def test_wandb_api_reports_a_missing_run_or_artifact_as_value_error():
    """sync.py reports those edges as unlinkable, and wraps other failures in SourceError."""
    assert issubclass(wandb.apis.public.runs.RunNotFoundError, ValueError)
    assert "lazy=False" in inspect.getsource(Api.run)  # so api.run loads, and raises, at once
    from_name = inspect.getsource(Artifact._from_name)
    assert "not found under entity" in from_name and "raise ValueError" in from_name
    assert "raise ValueError" in inspect.getsource(Api._artifact)  # a type other than asked


def _record_field(path: str):
    descriptor, field = pb.Record.DESCRIPTOR, None
    for part in path.split("."):
        assert descriptor is not None, f"{path}: {part!r} is inside a scalar field"
        assert part in descriptor.fields_by_name, (
            f"Record.{path}: {descriptor.full_name} has no field {part!r}")
        field = descriptor.fields_by_name[part]
        descriptor = field.message_type
    return field


_CPP_TYPES = {
    "string": {FieldDescriptor.CPPTYPE_STRING},
    "int": {FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64,
            FieldDescriptor.CPPTYPE_UINT32, FieldDescriptor.CPPTYPE_UINT64},
    "message": {FieldDescriptor.CPPTYPE_MESSAGE},
    "double": {FieldDescriptor.CPPTYPE_DOUBLE},
}


@pytest.mark.parametrize("path, repeated, kind", RECORD_FIELDS,
                         ids=[f"Record.{row[0]}" for row in RECORD_FIELDS])
def test_wandb_record_has_the_field_record_log_reads(path, repeated, kind):
    field = _record_field(path)
    assert field.is_repeated == repeated, f"Record.{path}: repeated is {field.is_repeated}"
    assert field.cpp_type in _CPP_TYPES[kind], f"Record.{path}: cpp_type {field.cpp_type}"


def test_wandb_record_type_oneof_holds_the_kinds_record_log_matches():
    oneof = pb.Record.DESCRIPTOR.oneofs_by_name["record_type"]
    assert set(RECORD_KINDS) <= {f.name for f in oneof.fields}
    for method in MESSAGE_METHODS:
        assert callable(getattr(pb.Record(), method))
    # record_log.py applies run.config and config records with the same code
    assert _record_field("run.config").message_type is _record_field("config").message_type


def test_wandb_artifact_accepts_what_save_checkpoint_builds(tmp_path, monkeypatch):
    """A real ``wandb.Artifact``, built offline by save_checkpoint (no run, no network)."""
    monkeypatch.setenv("WANDB_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("WANDB_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "w.bin").write_bytes(b"weights")
    (tmp_path / "opt").mkdir()
    (tmp_path / "opt" / "adam.bin").write_bytes(b"moments")
    (tmp_path / "ref").mkdir()
    (tmp_path / "ref" / "big.bin").write_bytes(b"big")
    big_uri = (tmp_path / "ref" / "big.bin").as_uri()

    class Recorder:
        id = "abc123"

        def __init__(self):
            self.calls = []
            self.summary = {"runchain": {"checkpoints": [1]}}  # a resumed run's earlier save

        def log_artifact(self, artifact, aliases=None):
            self.calls.append((artifact, aliases))
            return artifact

    run = Recorder()
    artifact = runchain.save_checkpoint(run, {"model": [1]}, step=3,
                                        files=[tmp_path / "w.bin", tmp_path / "opt"],
                                        references=[big_uri])

    assert isinstance(artifact, wandb.Artifact)
    assert run.calls == [(artifact, ["step-3", "latest"])]
    assert run.summary == {"runchain": {"checkpoints": [1, 3]}}
    assert artifact.type == "checkpoint"
    assert artifact.metadata == {"step": 3}
    entries = artifact.manifest.entries
    assert set(entries) == {"w.bin", "opt/adam.bin", "big.bin", "checkpoint.json"}
    assert entries["big.bin"].ref == big_uri
    assert entries["w.bin"].ref is None
    assert json.loads(Path(entries["checkpoint.json"].local_path).read_text()) == {
        "model": [1], "step": 3}


# -- the tables against runchain's source ---------------------------------------------

WANDB_NAMES = {"run", "artifact", "api", "entry", "wandb", "remote", "producer", "runs"}
PROTO_NAMES = {"record", "r", "a", "c", "item", "update"}  # record_log.py: protobuf messages


def _chain(node: ast.AST) -> list[str] | None:
    """``a.b.c`` -> ["a", "b", "c"]; ``a.b[k]`` -> ["a", "b[]"]; None unless rooted at a name."""
    parts = []
    while True:
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif isinstance(node, ast.Subscript) and parts == []:
            parts.append("[]")
            node = node.value
        else:
            break
    if not isinstance(node, ast.Name) or not parts:
        return None
    parts = [node.id, *reversed(parts)]
    if parts[-1] == "[]":
        parts[-2:] = [parts[-2] + "[]"]
    return parts


def _non_wandb_names(scope: ast.AST) -> set[str]:
    """Names this scope binds to runchain's own objects (``run = read_local_run(...)``,
    ``run: LocalRun``), which share a name with a wandb object elsewhere."""
    names = set()
    if isinstance(scope, (ast.FunctionDef, ast.AsyncFunctionDef)):
        for arg in scope.args.args + scope.args.kwonlyargs:
            if arg.annotation is not None and ast.unparse(arg.annotation) != "Any":
                names.add(arg.arg)
    for node in _own_nodes(scope):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            root = _chain(node.value.func) or [getattr(node.value.func, "id", "")]
            if root[0] not in WANDB_NAMES:
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _own_nodes(scope: ast.AST):
    """Nodes of ``scope`` outside nested functions and classes."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(node))


def _scopes(tree: ast.Module):
    yield tree
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield node


def _wandb_uses() -> dict[str, set[str]]:
    """Every wandb use in the sources, as dotted chains, mapped to where it occurs.

    A chain ``run.config.update`` yields ``run.config`` and ``run.config.update``; an
    ``import ... as pb`` from wandb is spelled out as its module path.
    """
    uses: dict[str, set[str]] = {}
    for path in SOURCES:
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "wandb":
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    uses.setdefault(full, set()).add(f"{path.name}:{node.lineno}")
                    aliases[alias.asname or alias.name] = full
        for scope in _scopes(tree):
            skip = _non_wandb_names(scope)
            for node in _own_nodes(scope):
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "getattr" \
                        and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
                    uses.setdefault(f"getattr(*, {node.args[1].value!r})", set()).add(
                        f"{path.name}:{node.lineno}")
                if not isinstance(node, (ast.Attribute, ast.Subscript)):
                    continue
                chain = _chain(node)
                if not chain or chain[0] in skip:
                    continue
                if chain[0] in aliases:
                    chain = aliases[chain[0]].split(".") + chain[1:]
                elif chain[0] not in WANDB_NAMES:
                    continue
                for end in range(2, len(chain) + 1):
                    uses.setdefault(".".join(chain[:end]), set()).add(f"{path.name}:{node.lineno}")
    return uses


def test_table_covers_every_wandb_use_in_runchain_source():
    covered = {row[0] for row in CALLS} | {row[0] for row in ATTRS}
    covered |= {f"getattr(*, {row[2]!r})" for row in ATTRS}
    covered |= {f"getattr(*, {name!r})" for name in LIGHTNING_ATTRS}  # checked with lightning
    covered |= {f"{use}.{method}" for use in DICT_VALUED for method in dir(dict)}
    uses = _wandb_uses()
    missing = {use: sorted(where) for use, where in uses.items() if use not in covered}
    assert not missing, f"wandb uses missing from CALLS/ATTRS in {__file__}: {missing}"


def test_table_scan_finds_the_calls_it_guards():
    """The scan must see the known calls, or the coverage test above proves nothing."""
    uses = _wandb_uses()
    for use in ("wandb.init", "wandb.Artifact", "wandb.Api", "wandb.errors.CommError",
                "run.use_artifact", "run.define_metric", "run.config.update", "run.finish",
                "run.log", "run.log_artifact", "artifact.get_entry", "artifact.logged_by",
                "artifact.type", "artifact.new_file", "entry.download",
                "api.artifact", "api.run", "api.default_entity", "remote.logged_artifacts",
                "getattr(*, 'ref')",
                "producer.config.get", "wandb.proto.wandb_internal_pb2.Record",
                "api.runs", "runs.entity", "run.summary_metrics", "run.scan_history",
                "run.used_artifacts", "run.logged_artifacts", "run.url",
                "wandb.sdk.lib.service.service_connection.WandbApiFailedError",
                "remote.use_artifact", "remote.used_artifacts", "artifact.id"):
        assert use in uses, f"scan lost {use}"
    # runchain's own LocalRun / RunFile objects named ``run`` are not mistaken for wandb runs
    for own in ("run.checkpoints", "run.breadcrumbs", "run.history", "run.torn", "run.run_id"):
        assert own not in uses, f"scan mistook runchain's {own} for wandb"


def test_table_covers_every_record_field_record_log_reads():
    tree = ast.parse((REPO / "runchain" / "readers" / "record_log.py").read_text(encoding="utf-8"))
    known = {part for path, _, _ in RECORD_FIELDS for part in path.split(".")}
    known |= set(MESSAGE_METHODS)
    read = {node.attr for node in ast.walk(tree)  # record.run.start_time.seconds, ...
            if isinstance(node, ast.Attribute) and (_chain(node) or [""])[0] in PROTO_NAMES}
    assert {"ParseFromString", "value_json", "contents", "exit_code", "use_artifact"} <= read
    assert read - known == set(), "Record fields read but missing from RECORD_FIELDS"


def test_table_record_kinds_match_what_record_log_matches_on():
    tree = ast.parse((REPO / "runchain" / "readers" / "record_log.py").read_text(encoding="utf-8"))
    compared = {node.comparators[0].value for node in ast.walk(tree)
                if isinstance(node, ast.Compare) and isinstance(node.left, ast.Name)
                and node.left.id == "kind" and isinstance(node.comparators[0], ast.Constant)
                and isinstance(node.comparators[0].value, str)}
    wanted = {elt.value for node in ast.walk(tree) if isinstance(node, ast.Assign)
              and getattr(node.targets[0], "id", "") == "_WANTED" for elt in node.value.elts}
    assert compared == set(RECORD_KINDS) and wanted < compared


def test_the_lightning_attributes_are_checked():
    """Without the lightning extra, ModelCheckpoint's attributes are not in ATTRS (the rest
    of this file runs): this test skips, naming the install, and fails in CI."""
    need("lightning")
    assert any(owner is ModelCheckpoint for _, owner, *_ in ATTRS)


def test_the_paged_lineage_query_is_built_from_wandbs_own_artifact_queries():
    """``project_lineage.lineage_query`` takes ``RunInputArtifacts``'s fragments and
    ``ArtifactCreatedBy``'s ``createdBy`` selection from the installed wandb, and the Api
    sends GraphQL with ``execute_graphql`` (query, variables, omit_fields), as wandb's own
    ``RunArtifacts`` pages do."""
    import graphql
    from runchain.readers.project_lineage import lineage_query
    query = lineage_query()
    document = graphql.parse(query)
    names = {d.name.value for d in document.definitions}
    assert {"RunchainLineage", "ArtifactFragment", "RunInfoFragment", "PageInfoFragment"} <= names
    assert "createdBy {" in query and "... on Run" in query
    pages = inspect.getsource(wandb.apis.public.artifacts.RunArtifacts)
    assert "execute_graphql(" in pages and "omit_fields=" in pages


def test_scan_history_is_its_last_step_request_then_history_scan():
    """``project_history._scan`` makes ``HistoryScan`` as ``scan_history`` does, with the
    last step the listing gave instead of the ``lastHistoryStep`` request: so it reads the
    same rows. ``scan_history`` bounds max_step by last step + 1, and passes the run's own
    service API."""
    source = inspect.getsource(PublicRun.scan_history)
    assert "last_step = self.lastHistoryStep" in source
    assert "max_step = last_step + 1" in source
    assert "public.HistoryScan(" in source and "service_api=self._service_api" in source
    assert "self._service_api = service_api" in inspect.getsource(PublicRun.__init__)
