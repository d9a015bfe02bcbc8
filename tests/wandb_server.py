"""A stand-in of the W&B server on 127.0.0.1, for the REAL wandb SDK (0.31) in online mode.

    python tests/wandb_server.py --port 0 [--data DIR] [--crash-after SECONDS]

prints ``WANDB_BASE_URL=http://127.0.0.1:<port>`` and ``WANDB_ENTITY=<entity>`` (its first two
lines) and serves until SIGTERM or SIGINT. Point the SDK at it with ``WANDB_BASE_URL``,
``WANDB_API_KEY`` (any key of 40+ characters: wandb sends HTTP basic auth ``api:<key>``;
other keys get 401) and ``WANDB_MODE=online``. ``serving(data_dir)`` below starts it as a
subprocess for tests (the ``wandb_server`` fixture in conftest.py). State is in memory;
uploaded files go under ``--data DIR`` (a temporary folder, removed at exit, if not given).

GraphQL is parsed, validated and executed by graphql-core against
``wandb_server_schema.graphql``: exactly the subset of W&B's schema that the installed wandb
(its wandb-core binary, and the public Api's query text it forwards) sends in these flows,
answered by the resolvers below. Introspection (``__type``, ``__schema``) answers from that
schema. What each flow sends (GraphQL operation names, then HTTP routes):

- ``wandb.init`` / ``log`` / ``finish``: ``Viewer``, ``UpsertBucket``,
  ``OrganizationCoreWeaveOrganizationID``, ``ServerFeaturesQuery`` (no features: the SDK
  takes the paths older servers have), ``CreateRunFiles``; ``POST
  /files/{entity}/{project}/{run}/file_stream``
  (history, summary, system events, console output, ``complete`` and ``exitcode``),
  ``PUT /_standin/blobs/{key}`` (wandb-metadata.json, config.yaml, requirements.txt ...),
  ``POST /sdk/otel/v1/{metrics,logs}`` (the SDK's own telemetry, accepted and dropped, no key:
  it sends none; ``WANDB_ERROR_REPORTING=false`` turns it off);
- ``log_artifact``: ``ArtifactType``, ``CreateArtifact`` (versions v0, v1... per collection;
  a digest the collection has is that version, with the new aliases, and nothing more is
  sent), ``CreateArtifactManifest`` (twice), ``CreateArtifactFiles`` (a file whose md5 a
  version of the collection has needs no upload), the file and manifest PUTs,
  ``CommitArtifact`` (``latest`` moves to the new version, the other aliases given too);
- ``use_artifact``: ``ArtifactMembershipByName``, ``UseArtifact``;
- ``resume="must"``: ``RunResumeStatus`` (null for a missing run, which the SDK turns into
  its UsageError); ``resume_from`` (rewind): ``RewindRun``, which drops the history after
  the step; ``fork_from``: nothing of its own: a new run, whose history holds only its own
  rows from the branch step + 1;
- ``wandb.Api``: ``GetDefaultEntity``, ``GetViewer``, ``Runs`` (paged, by creation), ``Run``,
  ``RunHistoryKeys`` (``lastHistoryStep``), ``RunParquetHistory`` (no parquet files: every
  row is live), ``HistoryPage`` / ``SampledHistoryPage`` (scan_history without / with keys),
  ``RunFullHistory`` (``history()``), ``RunOutputArtifacts``, ``RunInputArtifacts``,
  ``ArtifactCreatedBy``, ``ArtifactUsedBy``, ``FetchArtifactManifest``,
  ``GetArtifactMembershipFileUrls``, ``UseArtifact`` (the public Run's); ``GET
  /artifactsV2/...`` (a file by md5, as ``get_entry().download`` builds it), ``GET
  /_standin/blobs/{key}`` (the ``directUrl`` handed out);
- ``wandb sync``: as ``wandb.init`` ... ``finish`` with its artifacts; nothing the second time.

Run state: ``running`` from the first upsert (again once a resumed or rewound run streams),
``finished`` / ``failed`` from file_stream's ``complete`` and ``exitcode``, ``crashed`` for
a running run whose file_stream went quiet for ``--crash-after`` seconds (W&B's heartbeat
timeout; wandb-core beats every 30 s). Config is kept as the SDK sends it (``{"key":
{"value": ...}}``, ``_wandb`` included) and each upsert replaces it; the summary is the last
line of ``wandb-summary.json``; a run with no name given gets one, adjective-noun-N.

Not modeled: history sampling (``samples`` only caps), parquet exports, run filters and
orders other than creation, permissions, teams and organizations, registries and portfolios
(``LinkArtifact``), sweeps, multipart uploads, artifact TTLs, tags, deletion and storage
regions, W&B's hidden copy of a rewound run's old history.

Fails loudly: a GraphQL operation, field, argument or input field not in the schema is an
HTTP 400 whose body is graphql-core's error naming it; a resolver's refusal (a run or
artifact that does not exist where W&B would fail) is a 400 naming it; so is any route not
served, naming the method and path, and any request the stand-in cannot handle. Every
failure is written to stderr too.

The server's own routes are under ``/_standin/`` and need no key: ``GET /_standin/requests``
(every request so far, as ``{"n", "operation", "status", "error"}``: ``n`` numbers the
requests from 1 and is never reset, the operation is the GraphQL operation name,
or its top-level fields when it has none, or ``METHOD /route/{pattern}``),
``POST /_standin/requests/clear`` (empties that list), ``GET /_standin/refused`` (every
request answered 400 or more, which a clear keeps: what the tests' ``nothing_refused``
guard checks), and ``PUT`` / ``GET /_standin/blobs/{key}``: the upload
and download URLs handed to the SDK (as W&B hands out signed storage URLs).
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import dataclasses
import datetime
import gzip
import hashlib
import itertools
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request
from pathlib import Path
from typing import Any, Iterator

ENTITY = "standin"
API_KEY = "standin0" * 5  # 40 characters, what a W&B key has
HERE = Path(__file__).resolve().parent
SCHEMA = HERE / "wandb_server_schema.graphql"


class Refused(Exception):
    """A request this stand-in does not serve, or one W&B would refuse: an HTTP 400."""


def gid(*parts: object) -> str:
    """A W&B-style node id: base64 of ``Type:part:part``."""
    return base64.b64encode(":".join(map(str, parts)).encode()).decode()


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def connection(items: list, after: str | None = None, first: int | None = None) -> dict:
    """A Relay connection over ``items``; a cursor is the count of items before it."""
    start = int(after) if after else 0
    end = len(items) if first is None else min(len(items), start + first)
    edges = [{"node": item, "cursor": str(start + i + 1)}
             for i, item in enumerate(items[start:end])]
    return {"totalCount": len(items), "edges": edges,
            "pageInfo": {"endCursor": str(end), "hasNextPage": end < len(items)}}


def json_arg(text: str | None, default: Any = None) -> Any:
    return default if text in (None, "") else json.loads(text)


# -- the model: graphql-core's default resolver reads these attributes, and calls the
#    methods (with ``info`` and the field's arguments) ---------------------------------

class Project:
    def __init__(self, store: Store, entity: str, name: str):
        self.store, self.entityName, self.name = store, entity, name
        self.id = gid("Project", "v1", name, entity)
        self.internalId = str(next(store.numbers))
        self.readOnly = False
        self.runs_by_name: dict[str, Run] = {}
        self.sequences: dict[str, Sequence] = {}

    def entity(self, info):
        return self.store.entity(info, self.entityName)

    def _runs(self, filters: str | None) -> list[Run]:
        if json_arg(filters, {}) != {}:
            raise Refused(f"run filters are not served: {filters}")
        return list(self.runs_by_name.values())

    def runCount(self, info, filters=None):
        return len(self._runs(filters))

    def runs(self, info, filters=None, after=None, first=None, order=None):
        runs = self._runs(filters)
        if order not in (None, "", "+created_at", "created_at", "-created_at"):
            raise Refused(f"run order {order!r} is not served (only by created_at)")
        if order == "-created_at":
            runs.reverse()
        return connection(runs, after, first)

    def run(self, info, name):
        return self.runs_by_name.get(name)

    def bucket(self, info, name, missingOk=None):
        return self.runs_by_name.get(name)

    def artifactCollection(self, info, name):
        return self.sequences.get(name)

    def _resolve(self, name: str) -> Artifact | None:
        collection, _, alias = name.partition(":")
        sequence = self.sequences.get(collection)
        return sequence.resolve(alias or "latest") if sequence else None

    def artifactCollectionMembership(self, info, name):
        artifact = self._resolve(name)
        return Membership(artifact) if artifact else None

    def artifact(self, info, name):
        return self._resolve(name)


class Run:
    def __init__(self, project: Project, name: str):
        self.project_, self.name = project, name
        self.id = gid("Run", "v1", name, project.name, project.entityName)
        self.projectId = project.internalId
        self.displayName = self.description = self.notes = self.group = self.jobType = None
        self.commit = self.sweepName = None
        self.tags: list[str] = []
        self.readOnly = False
        self.createdAt = now()
        self.heartbeat = time.monotonic()
        self.heartbeatAt = self.createdAt
        self.state_ = "running"
        self.config_: dict = {}
        self.summary: dict = {}
        self.history_lines: list[str] = []
        self.rows: list[dict] = []
        self.events_lines: list[str] = []
        self.log_lines: list[str] = []
        self.logged: list[Artifact] = []
        self.used: list[Artifact] = []

    def project(self, info):
        return self.project_

    def user(self, info):
        return self.project_.store.viewer(info)

    def state(self, info):
        crash_after = self.project_.store.crash_after
        if self.state_ == "running" and crash_after is not None \
                and time.monotonic() - self.heartbeat > crash_after:
            return "crashed"
        return self.state_

    def config(self, info):
        return json.dumps(self.config_)

    def summaryMetrics(self, info):
        return json.dumps(self.summary)

    def systemMetrics(self, info):
        return self.events_lines[-1] if self.events_lines else "{}"

    def wandbConfig(self, info, keys=None):
        wandb = self.config_.get("_wandb", {}).get("value", {})
        return json.dumps({k: v for k, v in wandb.items() if keys is None or k in keys})

    def historyLineCount(self, info):
        return len(self.history_lines)

    def eventsLineCount(self, info):
        return len(self.events_lines)

    def logLineCount(self, info):
        return len(self.log_lines)

    def historyTail(self, info):
        return json.dumps(self.history_lines[-1:])

    def eventsTail(self, info):
        return json.dumps(self.events_lines[-1:])

    def historyKeys(self, info, format=None):
        keys: dict[str, dict[str, int]] = {}
        for row in self.rows:
            for key, value in row.items():
                kind = type(value).__name__
                kind = {"int": "number", "float": "number", "str": "string", "dict": "map",
                        "list": "array", "bool": "boolean", "NoneType": "nil"}.get(kind, kind)
                keys.setdefault(key, {}).setdefault(kind, 0)
                keys[key][kind] += 1
        found = {"keys": {k: {"typeCounts": [{"type": t, "count": n} for t, n in c.items()]}
                          for k, c in keys.items()}}
        if self.rows:
            found["lastStep"] = max(row["_step"] for row in self.rows)
        return found

    def _between(self, low, high):  # low <= _step < high
        return [(line, row) for line, row in zip(self.history_lines, self.rows)
                if (low is None or row["_step"] >= int(low))
                and (high is None or row["_step"] < int(high))]

    def history(self, info, minStep=None, maxStep=None, samples=None):
        lines = [line for line, _ in self._between(minStep, maxStep)]
        return lines[:samples] if samples is not None else lines

    def sampledHistory(self, info, specs, packVersion=None):
        pages = []
        for spec in map(json.loads, specs):
            keys = spec.get("keys") or []
            high = spec.get("maxStep")
            rows = [{k: row[k] for k in keys if k in row}
                    for _, row in self._between(spec.get("minStep"),
                                                None if high is None else int(high) + 1)
                    if all(k in row for k in keys)]
            pages.append(rows[:spec["samples"]] if spec.get("samples") is not None else rows)
        return pages

    def parquetHistory(self, info, liveKeys):
        return {"parquetUrls": [],
                "liveData": [{k: row[k] for k in liveKeys if k in row} for row in self.rows]}

    def outputArtifacts(self, info, after=None, first=None):
        return connection(self.logged, after, first)

    def inputArtifacts(self, info, after=None, first=None):
        return connection(self.used, after, first)

    # -- file_stream ------------------------------------------------------------------

    def stream(self, body: dict) -> None:
        self.heartbeat = time.monotonic()
        self.heartbeatAt = now()
        for name, chunk in body.get("files", {}).items():
            offset, content = chunk["offset"], chunk["content"]
            if name == "wandb-history.jsonl":
                self.history_lines = put_lines(self.history_lines, offset, content, name)
                self.rows = put_lines(self.rows, offset, [json.loads(c) for c in content], name)
            elif name == "wandb-summary.json":
                if content:
                    self.summary = json.loads(content[-1])
            elif name == "wandb-events.jsonl":
                self.events_lines = put_lines(self.events_lines, offset, content, name)
            elif name == "output.log":
                self.log_lines = put_lines(self.log_lines, offset, content, name)
            else:
                raise Refused(f"file_stream file {name!r} is not served")
        if body.get("complete"):
            self.state_ = "finished" if body.get("exitcode", 0) == 0 else "failed"
        elif body.get("files"):  # a resumed (or rewound) run runs again
            self.state_ = "running"


def display_name(run_id: str, number: int) -> str:
    """A name as W&B makes one for a run given none: adjective-noun-<its number in the project>."""
    h = int(hashlib.md5(run_id.encode()).hexdigest(), 16)
    adjectives = ("amber", "brisk", "calm", "dapper", "eager", "fancy", "gentle", "hardy")
    nouns = ("river", "forest", "meadow", "canyon", "harbor", "summit", "valley", "glade")
    return f"{adjectives[h % 8]}-{nouns[h // 8 % 8]}-{number}"


def put_lines(lines: list, offset: int, content: list, name: str) -> list:
    """W&B's file_stream: ``content`` replaces the lines from ``offset`` on."""
    if offset > len(lines):
        raise Refused(f"file_stream {name}: offset {offset} is past its {len(lines)} lines")
    return lines[:offset] + list(content) + lines[offset + len(content):]


class Sequence:
    """An artifact collection (``ArtifactSequence``): versions and the aliases on them."""

    def __init__(self, project: Project, name: str, type_name: str):
        self.project_, self.name, self.type = project, name, type_name
        self.versions: list[Artifact] = []
        self.aliases: dict[str, Artifact] = {}

    def project(self, info):
        return self.project_

    def latestArtifact(self, info):
        return self.versions[-1] if self.versions else None

    def resolve(self, alias: str) -> Artifact | None:
        if alias[:1] == "v" and alias[1:].isdigit():
            index = int(alias[1:])
            return self.versions[index] if index < len(self.versions) else None
        return self.aliases.get(alias)

    def artifactMembership(self, info, aliasName):
        artifact = self.resolve(aliasName)
        return Membership(artifact) if artifact else None

    def move(self, alias: str, artifact: Artifact) -> None:
        self.aliases[alias] = artifact


class Artifact:
    def __init__(self, sequence: Sequence, number: int, data: dict, run: Run | None):
        self.sequence, self.number, self.run = sequence, number, run
        self.id = gid("Artifact", number)
        self.digest = data["digest"]
        self.description = data.get("description")
        self.metadata = data.get("metadata")
        self.historyStep = data.get("historyStep")
        self.state = "PENDING"
        self.versionIndex = None
        self.commitHash = None
        self.ttlDurationSeconds, self.ttlIsInherited = -2, True
        self.createdAt = self.updatedAt = now()
        self.tags: list = []
        self.pending_aliases = [a["alias"] for a in data.get("aliases") or []]
        self.files: dict[str, dict] = {}  # name -> {"md5", "birth"}
        self.manifest: dict | None = None  # {"id", "name", "digest", "key"}
        self.used_by: list[Run] = []
        self.size = self.fileCount = 0

    def aliases(self, info):
        return [alias_node(self.sequence, alias)
                for alias, artifact in self.sequence.aliases.items() if artifact is self]

    def artifactType(self, info):
        return {"name": self.sequence.type}

    def artifactSequence(self, info):
        return self.sequence

    def createdBy(self, info):
        return self.run

    def usedBy(self, info):
        return connection(self.used_by)

    def currentManifest(self, info):
        store = self.sequence.project_.store
        return None if self.manifest is None else {
            "id": self.manifest["id"],
            "file": {"id": gid("File", self.manifest["key"]),
                     "directUrl": store.blob_url(self.manifest["key"]),
                     "uploadUrl": store.blob_url(self.manifest["key"]), "uploadHeaders": []}}

    def file_nodes(self) -> list[dict]:
        store = self.sequence.project_.store
        nodes = []
        for name, entry in json.loads(store.blob(self.manifest["key"]))["contents"].items():
            hexmd5 = base64.b64decode(entry["digest"]).hex()
            key = f"artifact-files/{hexmd5}"
            nodes.append({"name": name, "directUrl": store.blob_url(key)})
        return nodes


def alias_node(sequence: Sequence, alias: str) -> dict:
    return {"id": gid("ArtifactAlias", sequence.project_.name, sequence.name, alias),
            "alias": alias, "artifactCollection": sequence}


class Membership:
    """An ``ArtifactCollectionMembership``: an artifact as a version of its collection."""

    def __init__(self, artifact: Artifact):
        self.artifact = artifact
        self.id = gid("ArtifactCollectionMembership", artifact.number)
        self.versionIndex = artifact.versionIndex
        self.createdAt = artifact.createdAt
        self.artifactCollection = artifact.sequence

    def aliases(self, info):
        return self.artifact.aliases(info)

    def files(self, info, names=None, after=None, first=None):
        nodes = [n for n in self.artifact.file_nodes() if names is None or n["name"] in names]
        return connection(nodes, after, first)


# -- the store: the root of queries and mutations -----------------------------------

class Store:
    def __init__(self, data: Path, entity: str = ENTITY, crash_after: float | None = None):
        self.data, self.entity_name, self.crash_after = data, entity, crash_after
        self.base_url = ""
        self.lock = threading.RLock()
        self.numbers = itertools.count(1)
        self.projects: dict[tuple[str, str], Project] = {}
        self.artifacts: dict[str, Artifact] = {}
        self.requests: list[dict] = []
        self.request_numbers = itertools.count(1)  # never reset: "n" orders requests for good
        self.refused: list[dict] = []  # every request answered >= 400, kept through a clear

    # blobs: what the SDK PUTs to the upload URLs handed out, under --data
    def blob_url(self, key: str) -> str:
        return f"{self.base_url}/_standin/blobs/{key}"

    def blob_path(self, key: str) -> Path:
        path = (self.data / "blobs" / key).resolve()
        if not path.is_relative_to((self.data / "blobs").resolve()):
            raise Refused(f"blob key {key!r} leaves the data folder")
        return path

    def blob(self, key: str) -> bytes:
        path = self.blob_path(key)
        if not path.is_file():
            raise Refused(f"blob {key!r} was never uploaded")
        return path.read_bytes()

    def project_for(self, entity: str | None, name: str | None, create: bool = False):
        key = (entity or self.entity_name, name or "uncategorized")
        if key not in self.projects and create:
            self.projects[key] = Project(self, *key)
        return self.projects.get(key)

    def run_for(self, entity, project, name) -> Run:
        found = self.project_for(entity, project)
        if found is None or name not in found.runs_by_name:
            raise Refused(f"run {entity}/{project}/{name} does not exist")
        return found.runs_by_name[name]

    def artifact_by_id(self, artifact_id: str) -> Artifact:
        if artifact_id not in self.artifacts:
            raise Refused(f"artifact {artifact_id!r} does not exist")
        return self.artifacts[artifact_id]

    # -- queries --------------------------------------------------------------------

    def viewer(self, info):
        return {"id": gid("User", 1), "name": self.entity_name, "username": self.entity_name,
                "email": f"{self.entity_name}@127.0.0.1", "admin": False,
                "entity": self.entity_name, "flags": "{}", "deletedAt": None,
                "apiKeys": {"edges": []}, "teams": {"edges": []}}

    def serverInfo(self, info):
        return {"features": []}  # none: the SDK takes the paths older servers have

    def project(self, info, name=None, entityName=None):
        return self.project_for(entityName, name)

    model = project

    def entity(self, info, name=None):
        name = name or self.entity_name
        return {"id": gid("Entity", name), "name": name, "organization": None}

    def artifact(self, info, id):
        return self.artifacts.get(id)

    # -- mutations ------------------------------------------------------------------

    def upsertBucket(self, info, input):
        if input.get("sweep"):
            raise Refused("sweeps are not served")
        project = self.project_for(input.get("entityName"), input.get("modelName"), create=True)
        name = input.get("name")
        if name is None:
            raise Refused("upsertBucket without a run name is not served")
        run, inserted = project.runs_by_name.get(name), False
        if run is None:
            run = project.runs_by_name[name] = Run(project, name)
            run.displayName = display_name(name, len(project.runs_by_name))
            inserted = True
        fields = {"displayName": "displayName", "description": "description", "notes": "notes",
                  "groupName": "group", "jobType": "jobType", "commit": "commit", "tags": "tags"}
        for key, attr in fields.items():
            if input.get(key) is not None:
                setattr(run, attr, input[key])
        if input.get("config") is not None:
            run.config_ = json.loads(input["config"])
        if input.get("summaryMetrics") is not None:
            run.summary.update(json.loads(input["summaryMetrics"]))
        if input.get("state") is not None:
            run.state_ = input["state"]
        run.heartbeat = time.monotonic()
        return {"bucket": run, "inserted": inserted}

    def createRunFiles(self, info, input):
        run = self.run_for(input["entityName"], input["projectName"], input["runName"])
        base = f"run-files/{run.project_.entityName}/{run.project_.name}/{run.name}"
        return {"runID": run.id, "uploadHeaders": [],
                "files": [{"name": name, "uploadUrl": self.blob_url(f"{base}/{name}")}
                          for name in input["files"]]}

    def rewindRun(self, info, input):
        if input["metricName"] != "_step":
            raise Refused(f"rewind by {input['metricName']!r} is not served (only _step)")
        run = self.run_for(input.get("entityName"), input.get("projectName"), input["runName"])
        keep = [i for i, row in enumerate(run.rows) if row["_step"] <= input["metricValue"]]
        end = keep[-1] + 1 if keep else 0
        run.history_lines, run.rows = run.history_lines[:end], run.rows[:end]
        run.state_ = "running"
        return {"rewoundRun": run}

    def createArtifact(self, info, input):
        run = None
        if input.get("runName"):  # the run must exist where the artifact goes
            run = self.run_for(input["entityName"], input["projectName"], input["runName"])
        project = self.project_for(input["entityName"], input["projectName"], create=True)
        names = [input.get("artifactCollectionName"), *(input.get("artifactCollectionNames") or [])]
        name = next(n for n in names if n)
        sequence = project.sequences.get(name)
        if sequence is None:
            sequence = project.sequences[name] = Sequence(project, name,
                                                          input["artifactTypeName"])
        elif sequence.type != input["artifactTypeName"]:
            raise Refused(f"artifact collection {name!r} has type {sequence.type!r}, "
                          f"not {input['artifactTypeName']!r}")
        if input.get("enableDigestDeduplication"):
            for existing in sequence.versions:
                if existing.digest == input["digest"]:
                    for alias in input.get("aliases") or []:
                        sequence.move(alias["alias"], existing)
                    return {"artifact": existing}
        artifact = Artifact(sequence, next(self.numbers), input, run)
        self.artifacts[artifact.id] = artifact
        return {"artifact": artifact}

    def createArtifactManifest(self, info, input):
        artifact = self.artifact_by_id(input["artifactID"])
        if input.get("type") not in (None, "FULL"):
            raise Refused(f"{input['type']} manifests are not served")
        if artifact.manifest is None:
            artifact.manifest = {"id": gid("ArtifactManifest", artifact.number),
                                 "name": input["name"],
                                 "key": f"manifests/{artifact.number}/{input['name']}"}
        artifact.manifest["digest"] = input["digest"]
        return {"artifactManifest": artifact.currentManifest(info)}

    def createArtifactFiles(self, info, input):
        nodes = []
        for spec in input["artifactFiles"]:
            artifact = self.artifact_by_id(spec["artifactID"])
            hexmd5 = base64.b64decode(spec["md5"]).hex()
            key = f"artifact-files/{hexmd5}"
            birth = next((v for v in artifact.sequence.versions
                          if v.files.get(spec["name"], {}).get("md5") == spec["md5"]), None)
            birth = birth.files[spec["name"]]["birth"] if birth else artifact
            artifact.files[spec["name"]] = {"md5": spec["md5"], "birth": birth}
            nodes.append({"storagePath": key, "artifact": birth, "uploadHeaders": [],
                          "uploadMultipartUrls": None,
                          "uploadUrl": None if birth is not artifact else self.blob_url(key)})
        return {"files": connection(nodes)}

    def commitArtifact(self, info, input):
        artifact = self.artifact_by_id(input["artifactID"])
        if artifact.manifest is None:
            raise Refused(f"artifact {artifact.id} has no manifest to commit")
        contents = json.loads(self.blob(artifact.manifest["key"]))["contents"]
        for name, entry in contents.items():
            if "ref" not in entry:
                self.blob(f"artifact-files/{base64.b64decode(entry['digest']).hex()}")
        if artifact.state != "COMMITTED":
            sequence = artifact.sequence
            artifact.state, artifact.versionIndex = "COMMITTED", len(sequence.versions)
            artifact.size = sum(e.get("size") or 0 for e in contents.values())
            artifact.fileCount = len(contents)
            artifact.updatedAt = now()
            sequence.versions.append(artifact)
            for alias in ["latest", *artifact.pending_aliases]:
                sequence.move(alias, artifact)
            if artifact.run is not None:
                artifact.run.logged.append(artifact)
        return {"artifact": artifact}

    def useArtifact(self, info, input):
        artifact = self.artifact_by_id(input["artifactID"])
        run = self.run_for(input["entityName"], input["projectName"], input["runName"])
        if artifact not in run.used:
            run.used.append(artifact)
            artifact.used_by.append(run)
        return {"artifact": artifact}


# -- HTTP ---------------------------------------------------------------------------

def make_schema():
    import graphql

    schema = graphql.build_schema(SCHEMA.read_text(encoding="utf-8"))

    def int64(value):
        return int(value)

    schema.type_map["Int64"].parse_value = int64
    schema.type_map["Int64"].serialize = int64
    schema.type_map["ArtifactCollection"].resolve_type = lambda *_: "ArtifactSequence"
    schema.type_map["ArtifactCreator"].resolve_type = \
        lambda value, *_: "Run" if isinstance(value, Run) else "User"
    return schema


def describe(error) -> str:
    """A GraphQL error as one line: what failed, where, and (from a resolver) its kind."""
    cause = error.original_error
    if cause is not None and not isinstance(cause, Refused):
        traceback.print_exception(cause, file=sys.stderr)
    where = f" (at {'.'.join(map(str, error.path))})" if error.path else ""
    kind = f"{type(cause).__name__}: " if cause is not None and not isinstance(cause, Refused) \
        else ""
    return f"{kind}{error.message}{where}"


def make_app(store: Store):
    import graphql
    from flask import Flask, Response, g, request
    from werkzeug.exceptions import HTTPException

    schema = make_schema()
    app = Flask("wandb_server")

    def fail(status: int, message: str):
        g.error = message
        print(f"wandb_server: {status} {g.get('operation')}: {message}",
              file=sys.stderr, flush=True)
        return Response(json.dumps({"errors": [{"message": message}]}), status,
                        mimetype="application/json")

    def body() -> Any:
        raw = request.get_data()
        if request.headers.get("Content-Encoding") == "gzip":
            raw = gzip.decompress(raw)
        return json.loads(raw)

    @app.before_request
    def authenticate():
        rule = request.url_rule.rule if request.url_rule else request.path
        rule = rule.replace("<path:", "{").replace("<", "{").replace(">", "}")
        g.operation = f"{request.method} {rule}"  # the route's pattern, or an unknown path
        if request.path.startswith(("/_standin/", "/sdk/otel/")):
            return None
        auth = request.authorization
        key = auth.password if auth and auth.type == "basic" and auth.username == "api" else None
        if key is None or len(key) < 40:
            return fail(401, "an API key of 40+ characters is needed, as HTTP basic auth "
                             "api:<key>")
        return None

    @app.after_request
    def record(response):
        if not request.path.startswith(("/_standin/requests", "/_standin/refused")):
            with store.lock:
                store.requests.append({"n": next(store.request_numbers),
                                       "operation": g.get("operation"),
                                       "status": response.status_code,
                                       "error": g.get("error")})
                if response.status_code >= 400:
                    store.refused.append(store.requests[-1])
        return response

    @app.errorhandler(HTTPException)
    def unknown(error):
        return fail(400, f"{request.method} {request.path} is not served "
                         f"({error.code} {error.name})")

    @app.post("/graphql")
    def graphql_route():
        payload = body()
        try:
            document = graphql.parse(payload["query"])
        except graphql.GraphQLError as error:
            return fail(400, f"GraphQL syntax: {error.message}")
        name = payload.get("operationName")
        operations = [d for d in document.definitions
                      if isinstance(d, graphql.OperationDefinitionNode)]
        if not name and len(operations) == 1:
            name = operations[0].name.value if operations[0].name else \
                ",".join(s.name.value for s in operations[0].selection_set.selections
                         if isinstance(s, graphql.FieldNode))
        g.operation = name
        errors = graphql.validate(schema, document)
        if not errors:
            with store.lock:
                result = graphql.execute(schema, document, root_value=store,
                                         variable_values=payload.get("variables"),
                                         operation_name=payload.get("operationName") or None)
            errors = result.errors
        if errors:
            return fail(400, "; ".join(map(describe, errors)))
        return {"data": result.data}

    @app.post("/files/<entity>/<project>/<run>/file_stream")
    def file_stream(entity, project, run):
        with store.lock:
            store.run_for(entity, project, run).stream(body())
        return {"exitcode": None, "limits": {}}

    @app.post("/sdk/otel/v1/<kind>")
    def telemetry(kind):  # the SDK's own metrics and logs (unless WANDB_ERROR_REPORTING=false)
        if kind not in ("metrics", "logs"):
            return fail(400, f"POST {request.path} is not served")
        return ""

    @app.put("/_standin/blobs/<path:key>")
    def put_blob(key):
        data = request.get_data()
        if key.startswith("artifact-files/") and hashlib.md5(data).hexdigest() != key[15:]:
            return fail(400, f"the upload to {key} does not have that md5")
        path = store.blob_path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return ""

    @app.get("/_standin/blobs/<path:key>")
    def get_blob(key):
        return Response(store.blob(key), mimetype="application/octet-stream")

    @app.get("/artifactsV2/<region>/<entity>/<project>/<collection>/<birth>/<hexhash>/<name>")
    def artifact_file(region, entity, project, collection, birth, hexhash, name):
        return get_blob(f"artifact-files/{hexhash}")

    @app.get("/_standin/requests")
    def requests_route():
        with store.lock:
            return Response(json.dumps(store.requests), mimetype="application/json")

    @app.get("/_standin/refused")
    def refused_route():
        with store.lock:
            return Response(json.dumps(store.refused), mimetype="application/json")

    @app.post("/_standin/requests/clear")
    def clear_requests():
        with store.lock:
            store.requests.clear()
        return {"cleared": True}

    @app.errorhandler(Exception)
    def broken(error):  # a request this stand-in cannot parse or a bug in it: loudly, no 500
        if not isinstance(error, Refused):
            traceback.print_exception(error, file=sys.stderr)
        return fail(400, f"{type(error).__name__}: {error}")

    return app


def main(argv: list[str] | None = None) -> None:
    import logging

    from werkzeug.serving import make_server

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data", type=Path, help="where uploads go (default: a temporary "
                                                   "folder, removed at exit)")
    parser.add_argument("--crash-after", type=float, default=300.0,
                        help="seconds without file_stream before a running run is crashed")
    args = parser.parse_args(argv)
    data = args.data or Path(tempfile.mkdtemp(prefix="wandb_server_"))
    data.mkdir(parents=True, exist_ok=True)
    store = Store(data, crash_after=args.crash_after)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server("127.0.0.1", args.port, make_app(store), threaded=True)
    store.base_url = f"http://127.0.0.1:{server.server_port}"

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"WANDB_BASE_URL={store.base_url}", flush=True)
    print(f"WANDB_ENTITY={store.entity_name}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if args.data is None:
            shutil.rmtree(data, ignore_errors=True)


# -- for tests ------------------------------------------------------------------------

@dataclasses.dataclass
class Server:
    base_url: str
    entity: str
    process: subprocess.Popen
    api_key: str = API_KEY

    def env(self, base_env: dict) -> dict:
        return {**base_env, "WANDB_BASE_URL": self.base_url, "WANDB_API_KEY": self.api_key,
                "WANDB_MODE": "online", "WANDB_ENTITY": self.entity}

    def _call(self, path: str, method: str = "GET") -> Any:
        with urllib.request.urlopen(urllib.request.Request(self.base_url + path,
                                                           method=method)) as response:
            return json.load(response)

    def requests(self) -> list[dict]:
        return self._call("/_standin/requests")

    def asked(self) -> dict[str, int]:
        """The requests since the last ``clear``, counted by operation, every one answered;
        the SDK's own telemetry (``POST /sdk/otel/...``, sent on its own schedule) left out."""
        seen = self.requests()
        assert not [r for r in seen if r["status"] >= 400], seen
        return dict(collections.Counter(r["operation"] for r in seen
                                        if not r["operation"].startswith("POST /sdk/otel/")))

    def refused(self) -> list[dict]:
        """Every request answered with a status of 400 or more, ``clear`` or not."""
        return self._call("/_standin/refused")

    def clear(self) -> None:
        self._call("/_standin/requests/clear", "POST")


@contextlib.contextmanager
def serving(data_dir: Path | str, *args: str) -> Iterator[Server]:
    """Run the stand-in in a subprocess with uploads under ``data_dir`` (its stderr goes to
    ``data_dir/server.log``; ``args`` are more options, e.g. ``--crash-after``); yields a
    ``Server``, and stops the process on exit (SIGTERM, then SIGKILL if it lingers)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "server.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--port", "0",
             "--data", str(data_dir / "data"), *args],
            stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL, text=True)
    try:
        lines = [process.stdout.readline().strip() for _ in range(2)]
        if not (lines[0].startswith("WANDB_BASE_URL=") and lines[1].startswith("WANDB_ENTITY=")):
            raise RuntimeError(f"wandb_server did not start: {lines}\n"
                               f"{log_path.read_text(errors='replace')}")
        yield Server(base_url=lines[0].split("=", 1)[1], entity=lines[1].split("=", 1)[1],
                     process=process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


if __name__ == "__main__":
    main()
