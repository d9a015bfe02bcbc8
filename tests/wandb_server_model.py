"""What the W&B stand-in (``tests/wandb_server.py``) holds and how it answers GraphQL: the
projects, runs (history, summary, config, state), artifact collections, versions, aliases
and files, and the resolvers of the queries and mutations that ``wandb_server_schema.graphql``
declares. Nothing here speaks HTTP; the server module routes requests here.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import itertools
import json
import threading
import time
from pathlib import Path
from typing import Any

ENTITY = "standin"
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
