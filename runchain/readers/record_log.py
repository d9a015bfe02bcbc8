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
import io
import json
import os
import struct
import warnings
import zlib
from typing import Any, BinaryIO, Iterator

import numpy as np
from wandb.proto import wandb_internal_pb2 as pb

from ..core.contract import config_branch_point, declared_axis
from ..errors import RunFileError
from .history_columns import STEP, decode_history, item_key

MAGIC = b":W&B"
HEADER_LEN = 7
BLOCK_LEN = 32 * 1024
CHUNK_HEADER = struct.Struct("<IHB")
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


class IncompleteRunWarning(UserWarning):
    """A run file ends in a torn record (the process crashed or is still writing)."""


@dataclasses.dataclass
class RecordScan:
    records: list[bytes] = dataclasses.field(default_factory=list)  # serialized Records, in order
    torn_at: int | None = None  # byte offset of the first unreadable chunk, or None
    reason: str | None = None
    record_end: int = 0  # byte offset just past the last whole record: where a read can go on
    crc: int | None = None  # crc32 of the file's bytes before record_end (None: not known)


_SEEDS = {kind: zlib.crc32(bytes((kind,))) for kind in (FULL, FIRST, MIDDLE, LAST)}
READ_BLOCKS = 32  # blocks read at a time: the file is never held whole
UNDECODABLE = "undecodable record"  # RunFile.torn: a CRC-valid record does not parse
TORN_TAIL = "file ends inside"  # RunFile.torn of a file cut short: as a live run's often is


def scan_records(data: bytes, path: str = "<bytes>") -> RecordScan:
    """Split a run file's bytes into serialized records, checking every CRC.

    Raises:
        RunFileError: the bytes do not start with a W&B run file header.
    """
    scan = RecordScan()
    scan.records = list(iter_records(io.BytesIO(data), path, scan))
    return scan


def _read(f: BinaryIO, n: int) -> bytes:
    """Up to ``n`` bytes; fewer only at the end of the file."""
    data = f.read(n)
    while 0 < len(data) < n:
        more = f.read(n - len(data))
        if not more:
            break
        data += more
    return data


def iter_records(f: BinaryIO, path: str, scan: RecordScan, start: int = 0,
                 prefix: int | None = None) -> Iterator[bytes]:
    """The serialized records of an open run file, one at a time, checking every CRC; reads
    ``READ_BLOCKS`` blocks at a time. Where the file is torn, stops and sets ``scan.torn_at``
    and ``scan.reason``. Sets ``scan.record_end``, the offset just past the last whole
    record, and ``scan.crc``, the crc32 of the bytes before it. ``start``: go on from the
    ``record_end`` an earlier read of the same bytes reached (0: from the header), whose
    bytes before it have crc32 ``prefix`` (None: take no crc32, ``scan.crc`` stays None).

    Raises:
        RunFileError: the file does not start with a W&B run file header.
    """
    base = start - start % BLOCK_LEN  # every read starts at a block boundary
    f.seek(base)
    data = _read(f, READ_BLOCKS * BLOCK_LEN)
    if not start and len(data) < HEADER_LEN and MAGIC.startswith(data[:4]):  # empty, or cut
        scan.torn_at, scan.reason = 0, "file ends inside its header"  # in it: just started or died
        return
    if not start and (len(data) < HEADER_LEN or data[:4] != MAGIC):
        raise RunFileError(
            f"{path} is not a W&B run file (it does not start with {MAGIC!r}); pass the "
            f"run-<id>.wandb file inside a wandb/run-* or wandb/offline-run-* folder")
    crc32, unpack, seeds = zlib.crc32, CHUNK_HEADER.unpack_from, _SEEDS
    pending: list[bytes] | None = None  # parts of a record split across blocks
    pos = start - base if start else HEADER_LEN  # the offset in data (data[0] is at base)
    scan.record_end, prefix_to = base + pos, start  # prefix: crc32 of the bytes before prefix_to
    try:
        while data:
            view, end = memoryview(data), len(data)
            last = end < READ_BLOCKS * BLOCK_LEN  # a short read: the end of the file
            while pos < end:  # chunks never cross a block, so never the end of a full read
                room = BLOCK_LEN - pos % BLOCK_LEN
                if room < 7:
                    pos += room  # block tail padding
                    continue
                if end - pos < 7:
                    scan.torn_at, scan.reason = base + pos, "file ends inside a chunk header"
                    return
                crc, length, kind = unpack(data, pos)
                body_start = pos + 7
                body_end = body_start + length
                if length > room - 7 or body_end > end:
                    if crc == 0 and length == 0 and kind == 0:
                        pos += room  # zero padding (preallocated or flushed block)
                        continue
                    scan.torn_at, scan.reason = base + pos, "file ends inside a chunk"
                    return
                if kind not in seeds or crc32(view[body_start:body_end], seeds[kind]) != crc:
                    scan.torn_at = base + pos
                    scan.reason = ("chunk checksum mismatch" if kind in seeds
                                   else f"unexpected chunk type {kind}")
                    return
                if kind == FULL and pending is None:
                    scan.record_end = base + body_end
                    yield data[body_start:body_end]
                elif kind == FIRST and pending is None:
                    pending = [data[body_start:body_end]]
                elif kind == MIDDLE and pending is not None:
                    pending.append(data[body_start:body_end])
                elif kind == LAST and pending is not None:
                    pending.append(data[body_start:body_end])
                    record, pending = b"".join(pending), None
                    scan.record_end = base + body_end
                    yield record
                else:
                    scan.torn_at, scan.reason = base + pos, f"unexpected chunk type {kind}"
                    return
                pos = body_end
            view.release()
            if last:
                break
            if prefix is not None:
                prefix, prefix_to = crc32(memoryview(data)[prefix_to - base:], prefix), base + end
            base, pos = base + end, pos - end
            data = _read(f, READ_BLOCKS * BLOCK_LEN)
        if pending is not None:
            scan.torn_at, scan.reason = base + len(data), "file ends inside a record"
    finally:  # the crc32 up to the last whole record, when it ended in the piece in hand
        scan.crc = (crc32(memoryview(data)[prefix_to - base:scan.record_end - base], prefix)
                    if prefix is not None and base <= prefix_to <= scan.record_end else None)


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
    used: list[tuple[str, str]] = dataclasses.field(default_factory=list)  # (type, name:version)
    history: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)  # "_step" + metrics
    first_step: int | None = None  # the first history row's _step
    last_step: int | None = None  # the last history row's _step
    summary: dict[str, Any] = dataclasses.field(default_factory=dict)  # only if asked for
    exit_code: int | None = None  # None: no exit record (crashed or still running)
    branch_point: tuple[str, float] | None = None  # fork_from / resume_from: (run, _step value)
    # the step metric the run declared with define_metric for "*" (contract.declared_axis)
    declared_axis: str | None = None
    host: str | None = None  # the machine that wrote it
    torn: str | None = None  # why reading stopped early, or None
    declared: dict[str, str] = dataclasses.field(default_factory=dict)  # define_metric: name -> axis
    record_end: int = 0  # offset just past the last whole record read: a grown file goes on there
    prefix_crc: int | None = None  # crc32 of the bytes before record_end, where the cache took it

    @property
    def complete(self) -> bool:
        return self.torn is None and self.exit_code is not None


def _apply(target: dict[str, Any], update: Any) -> None:
    """Apply a config or summary record's updates and removals to ``target``."""
    for item in update.update:
        if item.key:
            target[item.key] = json.loads(item.value_json)
        else:
            *parents, leaf = item.nested_key
            node = target
            for p in parents:
                node = node.setdefault(p, {})
            node[leaf] = json.loads(item.value_json)
    for item in update.remove:
        target.pop(item_key(item), None)


def _artifact(a: Any) -> ArtifactRecord:
    try:
        metadata = json.loads(a.metadata) if a.metadata else {}
    except json.JSONDecodeError:
        metadata = {}
    files = {c.path: (c.ref or c.local_path) for c in a.manifest.contents}
    return ArtifactRecord(a.name, a.type, list(a.aliases), metadata, files, a.digest)


_KINDS = {f.number: f.name for f in pb.Record.DESCRIPTOR.oneofs_by_name["record_type"].fields}
_WANTED = {"run", "config", "artifact", "use_artifact", "exit", "metric"}


def record_kind(raw: bytes) -> str | None:
    """The ``record_type`` of a serialized Record ("history", "run", ...), without parsing it.

    Reads tags up to the first field of the oneof; ``num`` (a varint) usually comes first.
    """
    if raw[:1] == b"\x08":  # fast path: num, then a one-byte tag
        pos = 1
        while raw[pos] & 0x80:
            pos += 1
        tag = raw[pos + 1] if pos + 1 < len(raw) else 0
        if tag < 0x80 and (tag >> 3) in _KINDS:
            return _KINDS[tag >> 3]
    pos, end = 0, len(raw)
    while pos < end:
        tag, pos = _read_varint(raw, pos)
        number, wire = tag >> 3, tag & 7
        if number in _KINDS:
            return _KINDS[number]
        if wire == 0:
            _, pos = _read_varint(raw, pos)
        elif wire == 2:
            length, pos = _read_varint(raw, pos)
            pos += length
        elif wire in (1, 5):
            pos += 8 if wire == 1 else 4
        else:
            return None
    return None


def _read_varint(raw: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = raw[pos]
        value |= (byte & 0x7F) << shift
        pos += 1
        if byte < 0x80:
            return value, pos
        shift += 7


def read_run_file(path: str | os.PathLike, history: bool = True, summary: bool = False) -> RunFile:
    """Read one run file: run identity, config, artifacts logged and used, history, exit.

    The file is read a few blocks at a time and history is decoded in batches, so memory
    holds the columns returned, not the file (``history=False`` keeps two history records).

    Args:
        path: a ``run-<id>.wandb`` file.
        history: decode history rows into columns (False: only ``first_step``, ``last_step``).
        summary: also apply the summary records (one per logged row, so off by default).

    Raises:
        RunFileError: unreadable file or not a W&B run file.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            run = read_records(f, path, history, summary)
    except OSError as e:
        raise RunFileError(f"cannot read run file {path}: {e.strerror}") from e
    steps = run.history[STEP]
    run.first_step, run.last_step = (int(steps[0]), int(steps[-1])) if steps.size else (None, None)
    if not history:
        run.history = {}
    if run.torn:
        warnings.warn(f"{path}: {run.torn}; read the records before it and marked the run "
                      f"incomplete", IncompleteRunWarning, stacklevel=2)
    return run


def read_records(f: BinaryIO, path: str, history: bool, summary: bool,
                  run: RunFile | None = None) -> RunFile:
    """The run an open file describes, its history decoded as the records stream past;
    ``torn`` says why reading stopped early: a record that does not parse, else a torn file,
    else a history record that does not decode. Given a ``run``, the records from its
    ``record_end`` on are applied to it, and its ``history`` is the new rows alone."""
    scan = RecordScan()
    # the crc32 of what was read only where a read can go on: from a decoded history
    start, prefix = ((run.record_end, run.prefix_crc or 0) if run is not None else
                     (0, 0 if history else None))
    run = run if run is not None else RunFile(path=path)
    broke = False
    declared = run.declared  # metric name or glob -> the step metric it was given
    wanted = _WANTED | {"summary"} if summary else _WANTED

    def history_records() -> Iterator[bytes]:
        """Each history record, in order; every other record is applied to ``run`` on the way."""
        nonlocal broke
        record = pb.Record()
        for raw in iter_records(f, path, scan, start, prefix):
            try:
                kind = record_kind(raw)
            except IndexError:  # a varint runs off the end: a CRC-valid record that does not parse
                broke = True
                return
            if kind == "history":
                yield raw
                continue
            if kind not in wanted:
                continue
            try:
                record.ParseFromString(raw)
            except Exception:  # protobuf's DecodeError; a CRC-valid record that does not parse
                broke = True
                return
            if kind == "metric":  # define_metric(name or glob, step_metric=...)
                if record.metric.step_metric:
                    declared[record.metric.glob_name or record.metric.name] = record.metric.step_metric
                continue
            _apply_record(run, kind, record)

    records = history_records()
    try:
        run.history = decode_history(records if history else _ends(records))
        failed = False
    except (RunFileError, OSError):  # not a run file, or reading it failed: not a decode error
        raise
    except Exception:  # a CRC-valid history record that does not parse
        run.history = {STEP: np.empty(0, np.int64)}
        failed = True
        for _ in records:  # the records after it still count (artifacts, exit)
            pass
    run.torn = UNDECODABLE if broke else scan.reason or (UNDECODABLE if failed else None)
    run.record_end, run.prefix_crc = scan.record_end, scan.crc
    if run.branch_point is None:  # wandb 0.19 and older record it in the config only
        run.branch_point = config_branch_point(run.config)
    run.declared_axis = declared_axis(declared)
    return run


def _ends(records: Iterator[bytes]) -> list[bytes]:
    """The first and the last of ``records`` (the same one twice if there is one)."""
    first = last = None
    for raw in records:
        if first is None:
            first = raw
        last = raw
    return [] if first is None else [first, last]


def _apply_record(run: RunFile, kind: str, record: Any) -> None:
    """Apply one parsed record (not history) to ``run``."""
    if kind == "run":
        r = record.run
        run.run_id, run.project, run.entity = r.run_id, r.project, r.entity or None
        run.name = r.display_name or None
        run.start_time = r.start_time.seconds + r.start_time.nanos / 1e9
        run.host = r.host or None
        if r.HasField("branch_point") and r.branch_point.metric == STEP:
            run.branch_point = (r.branch_point.run, r.branch_point.value)
        _apply(run.config, r.config)
    elif kind == "config":
        _apply(run.config, record.config)
    elif kind == "summary":
        _apply(run.summary, record.summary)
    elif kind == "artifact":
        run.artifacts.append(_artifact(record.artifact))
    elif kind == "use_artifact":
        run.used.append((record.use_artifact.type, record.use_artifact.name))
    elif kind == "exit":
        run.exit_code = record.exit.exit_code
