"""Read W&B ``.wandb`` run files: the record log every run writes, online or offline.

Format: a 7-byte header (``:W&B``, two magic bytes, a version byte), then
LevelDB-log-style chunks in 32 KiB blocks. Each chunk has a 7-byte header, CRC-32
(little-endian, zlib CRC of the type byte plus the data), length (2 bytes), type
(1 full, 2 first, 3 middle, 4 last); a block tail under 7 bytes is padding. Each
record is a ``wandb.proto.wandb_internal_pb2.Record``.

A file torn by a crash yields every complete record before the tear; the run is
marked incomplete and an ``IncompleteRunWarning`` is issued, never a traceback.
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
import warnings
import zlib
from typing import Any

from wandb.proto import wandb_internal_pb2 as pb

from .errors import RunFileError

MAGIC = b":W&B"
HEADER_LEN = 7
BLOCK_LEN = 32 * 1024
CHUNK_HEADER = struct.Struct("<IHB")
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class IncompleteRunWarning(UserWarning):
    """A run file ends in a torn record (the process crashed or is still writing)."""


@dataclasses.dataclass
class RecordScan:
    records: list[bytes]  # serialized Record messages, in file order
    torn_at: int | None = None  # byte offset of the first unreadable chunk, or None
    reason: str | None = None


def scan_records(data: bytes, path: str = "<bytes>") -> RecordScan:
    """Split a run file's bytes into serialized records, checking every CRC.

    Raises:
        RunFileError: the bytes do not start with a W&B run file header.
    """
    if len(data) < HEADER_LEN or data[:4] != MAGIC:
        raise RunFileError(
            f"{path} is not a W&B run file (it does not start with {MAGIC!r}); pass the "
            f"run-<id>.wandb file inside a wandb/run-* or wandb/offline-run-* folder")
    records: list[bytes] = []
    pending: list[bytes] | None = None  # parts of a record split across blocks
    pos, end = HEADER_LEN, len(data)
    while pos < end:
        room = BLOCK_LEN - pos % BLOCK_LEN
        if room < CHUNK_HEADER.size:
            pos += room  # block tail padding
            continue
        if end - pos < CHUNK_HEADER.size:
            return RecordScan(records, pos, "file ends inside a chunk header")
        crc, length, kind = CHUNK_HEADER.unpack_from(data, pos)
        body_start = pos + CHUNK_HEADER.size
        if length > room - CHUNK_HEADER.size or body_start + length > end:
            if crc == 0 and length == 0 and kind == 0:
                pos += room  # zero padding (preallocated or flushed block)
                continue
            return RecordScan(records, pos, "file ends inside a chunk")
        body = data[body_start:body_start + length]
        if zlib.crc32(body, zlib.crc32(bytes((kind,)))) != crc:
            return RecordScan(records, pos, "chunk checksum mismatch")
        pos = body_start + length
        if kind == FULL and pending is None:
            records.append(body)
        elif kind == FIRST and pending is None:
            pending = [body]
        elif kind == MIDDLE and pending is not None:
            pending.append(body)
        elif kind == LAST and pending is not None:
            pending.append(body)
            records.append(b"".join(pending))
            pending = None
        else:
            return RecordScan(records, pos - length - CHUNK_HEADER.size,
                              f"unexpected chunk type {kind}")
    if pending is not None:
        return RecordScan(records, end, "file ends inside a record")
    return RecordScan(records)


@dataclasses.dataclass
class ArtifactRecord:
    """An artifact a run logged, as its run file records it."""

    name: str
    type: str
    aliases: list[str]
    metadata: dict[str, Any]
    files: dict[str, str]  # path in the artifact -> staged local path, or reference URI
    digest: str


@dataclasses.dataclass
class RunFile:
    """What one ``run-<id>.wandb`` file says about its run."""

    path: str
    run_id: str | None = None
    project: str | None = None
    entity: str | None = None
    name: str | None = None  # the run's display name
    start_time: float | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)
    artifacts: list[ArtifactRecord] = dataclasses.field(default_factory=list)
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    exit_code: int | None = None  # None: no exit record (crashed or still running)
    torn: str | None = None  # why reading stopped early, or None

    @property
    def complete(self) -> bool:
        return self.torn is None and self.exit_code is not None


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def _apply_config(config: dict[str, Any], update: Any) -> None:
    for item in update.update:
        if item.key:
            config[item.key] = json.loads(item.value_json)
        else:
            *parents, leaf = item.nested_key
            node = config
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = json.loads(item.value_json)
    for item in update.remove:
        config.pop(_key(item), None)


def _artifact(a: Any) -> ArtifactRecord:
    try:
        metadata = json.loads(a.metadata) if a.metadata else {}
    except json.JSONDecodeError:
        metadata = {}
    files = {c.path: (c.ref or c.local_path) for c in a.manifest.contents}
    return ArtifactRecord(a.name, a.type, list(a.aliases), metadata, files, a.digest)


def read_run_file(path: str | os.PathLike, history: bool = True) -> RunFile:
    """Read one run file: run identity, config, logged artifacts, history and exit.

    Args:
        path: a ``run-<id>.wandb`` file.
        history: decode history rows too (set False when only lineage is needed).

    Raises:
        RunFileError: unreadable file or not a W&B run file.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise RunFileError(f"cannot read run file {path}: {e.strerror}") from e
    scan = scan_records(data, path)
    run = RunFile(path=path, torn=scan.reason)
    record = pb.Record()
    for raw in scan.records:
        try:
            record.ParseFromString(raw)
        except Exception:  # protobuf's DecodeError; a CRC-valid record that does not parse
            run.torn = "undecodable record"
            break
        kind = record.WhichOneof("record_type")
        if kind == "history" and history:
            row = {_key(i): json.loads(i.value_json) for i in record.history.item}
            run.history.append(row)
        elif kind == "run":
            r = record.run
            run.run_id, run.project, run.entity = r.run_id, r.project, r.entity or None
            run.name = r.display_name or None
            run.start_time = r.start_time.seconds + r.start_time.nanos / 1e9
            _apply_config(run.config, r.config)
        elif kind == "config":
            _apply_config(run.config, record.config)
        elif kind == "artifact":
            run.artifacts.append(_artifact(record.artifact))
        elif kind == "exit":
            run.exit_code = record.exit.exit_code
    if run.torn:
        warnings.warn(f"{path}: {run.torn}; read the records before it and marked the run "
                      f"incomplete", IncompleteRunWarning, stacklevel=2)
    return run
