"""Decode a run file's history records into numpy columns, in bulk.

wandb writes each logged row as a ``HistoryRecord`` of items (key, JSON value), keys
in arbitrary order. Parsing every record and then every item from Python costs about
three times the parse itself, so this module decodes a whole file's rows at once:

1. The history records are wrapped into one message of a *flat view*: a schema
   wire-compatible with wandb's ``Record.history.item`` whose item field is declared
   singular instead of repeated. Protobuf merges repeated occurrences of a singular
   message, so one ``ParseFromString`` yields two flat lists, every key and every
   value of the file in order. A marker item after each record keeps the rows apart.
2. The values, JSON numbers, become one float64 array in a single pass.
3. Keys become column indices, and one numpy scatter fills the (key, row) grid.

Rows the fast path cannot prove it read exactly (a key split into several parts, a
value that is not a number) are decoded again with wandb's own ``Record`` class, per
item, the slow and obvious way, and turned into columns by the rule both readers share
(``stitch.rows_to_columns``): a key is kept when it logged a number, and every value that
is not a number (a string, media, a boolean) is NaN, as is a value a row did not log.
"""

from __future__ import annotations

import json
import mmap
from typing import Iterable, Mapping, Sequence

import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError
from wandb.proto import wandb_internal_pb2 as pb

from ..core.contract import LOCAL_STEP as STEP
from ..core.stitch import rows_to_columns
_MARK_KEY = "\x00"  # wandb keys are never NUL
_MARK_VALUE = b"\x00"  # and values are JSON, never NUL


def _flat_view() -> type:
    """``FlatFile``: field numbers from wandb's Record > HistoryRecord > HistoryItem."""
    item_fields = {name: pb.HistoryItem.DESCRIPTOR.fields_by_name[name].number
                   for name in ("key", "nested_key", "value_json")}
    F = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="runchain_flat_history.proto",
                                               package="runchain_flat", syntax="proto3")

    def message(name: str, fields: list[tuple[str, int, int, int, str]]) -> None:
        m = proto.message_type.add(name=name)
        for field, number, kind, label, type_name in fields:
            f = m.field.add(name=field, number=number, type=kind, label=label)
            if type_name:
                f.type_name = type_name

    message("Item", [  # every item of the file merges into this one message
        ("key", item_fields["key"], F.TYPE_STRING, F.LABEL_REPEATED, ""),
        ("nested_key", item_fields["nested_key"], F.TYPE_STRING, F.LABEL_REPEATED, ""),
        ("value_json", item_fields["value_json"], F.TYPE_BYTES, F.LABEL_REPEATED, "")])
    message("History", [("item", pb.HistoryRecord.DESCRIPTOR.fields_by_name["item"].number,
                         F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".runchain_flat.Item")])
    message("Record", [("history", pb.Record.DESCRIPTOR.fields_by_name["history"].number,
                        F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".runchain_flat.History")])
    message("File", [("record", 1, F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".runchain_flat.Record")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("runchain_flat.File"))


FlatFile = _flat_view()


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _wrap(tag: int, body: bytes) -> bytes:
    return bytes((tag,)) + _varint(len(body)) + body


# One flat-view record holding one marker item, to follow each real record.
_MARKER = _wrap(0x0A, _wrap(0x12, _wrap(0x0A, _wrap(0x0A, _MARK_KEY.encode())
                                        + _wrap(0x12, _MARK_KEY.encode())
                                        + b"\x82\x01" + _varint(1) + _MARK_VALUE)))
_SMALL = [bytes((0x0A,)) + _varint(n) for n in range(1 << 13)]  # record headers, precomputed


BATCH_BYTES = 1 << 20  # records decoded per parse: a batch's Python objects take ~10x its bytes


def decode_history(records: Iterable[bytes]) -> dict[str, np.ndarray]:
    """History columns of serialized ``Record``s that all hold a ``history`` record.

    ``records`` is consumed as it goes, in batches of at most ``BATCH_BYTES`` (each batch is
    decoded and released before the next is taken), so a generator over a file never holds
    more than one batch of it. A batch the fast path cannot read exactly is decoded the slow
    way, and the other batches keep the fast one.

    Returns:
        ``_step`` (int64, rows without one dropped) and one float64 array per numeric key,
        NaN where a row did not log it, rows in file order.
    """
    parts, batch, size = [], [], 0
    for raw in records:
        if batch and size + len(raw) > BATCH_BYTES:
            parts.append(_decode_batch(batch))
            batch, size = [], 0
        batch.append(raw)
        size += len(raw)
    if batch or not parts:
        parts.append(_decode_batch(batch))
    return _concat(parts)


def _decode_batch(records: Sequence[bytes]) -> dict[str, np.ndarray]:
    if not records:
        return {STEP: np.empty(0, np.int64)}
    parts: list[bytes] = []
    for raw in records:
        n = len(raw)
        parts += (_SMALL[n] if n < len(_SMALL) else b"\x0a" + _varint(n), raw, _MARKER)
    try:
        item = FlatFile.FromString(b"".join(parts)).record.history.item
    except DecodeError:
        return _slow(records)
    keys, nested, values = list(item.key), list(item.nested_key), list(item.value_json)
    n_rows = len(records)
    if len(nested) == len(values) and len(keys) == n_rows:  # wandb-core: keys in nested_key
        names = nested
    elif len(keys) == len(values) and len(nested) == n_rows:  # older writers: keys in key
        names = keys
    else:
        names = None
    if names is not None:
        ids, index = _index(names)
        ends = np.flatnonzero(ids == index[_MARK_KEY])
        if ends.size == n_rows and all(values[i] == _MARK_VALUE for i in ends.tolist()):
            return _grid(ids, index, values, ends, records)
    return _slow(records)


def concat_columns(parts: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Columns of rows one after the other (e.g. a file's cached rows, then those it gained):
    ``_step`` int64 first, then every key sorted, NaN where a part lacks it."""
    return _concat([dict(part) for part in parts])


def _concat(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Batches of columns, one after the other; a key a batch lacks is NaN there.

    Empties ``parts`` as it goes, each batch dropped once copied, so memory holds the result
    and one batch, not the result twice (batch grids are their own mappings: see ``_nans``).
    """
    if len(parts) == 1:
        return parts.pop()
    names = sorted({name for part in parts for name in part} - {STEP})
    total = sum(part[STEP].size for part in parts)
    out = {STEP: np.empty(total, np.int64), **{name: np.empty(total) for name in names}}
    start = 0
    for i, part in enumerate(parts):
        parts[i] = None
        end = start + part[STEP].size
        for name, column in out.items():
            column[start:end] = part[name] if name in part else np.nan
        start = end
        del part
    parts.clear()
    return out


def _nans(shape: tuple[int, int]) -> np.ndarray:
    """A float64 array of NaN; a big one in its own anonymous mapping, so that freeing it gives
    the memory back to the system at once (malloc keeps freed chunks of its heap, and a big
    file's batches would leave the columns' size again behind)."""
    size = shape[0] * shape[1] * 8
    if size < MAPPED_BYTES:
        return np.full(shape, np.nan)
    grid = np.frombuffer(mmap.mmap(-1, size), np.float64).reshape(shape)
    grid.fill(np.nan)
    return grid


MAPPED_BYTES = 256 << 10  # batch grids this big get their own mapping (few: a map count is capped)


def _index(names: list[str]) -> tuple[np.ndarray, dict[str, int]]:
    index = {name: i for i, name in enumerate(dict.fromkeys(names))}
    return np.fromiter(map(index.__getitem__, names), np.intp, len(names)), index


def _grid(ids: np.ndarray, index: dict[str, int], values: list[bytes], ends: np.ndarray,
          records: Sequence[bytes]) -> dict[str, np.ndarray]:
    for i in ends.tolist():
        values[i] = b"nan"  # the markers
    try:
        numbers = np.fromiter(map(float, values), np.float64, len(values))
    except ValueError:  # a string, boolean, null or object somewhere: decode exactly
        return _slow(records)
    is_mark = np.zeros(ids.size, bool)
    is_mark[ends] = True
    row = np.cumsum(is_mark) - is_mark  # the row of each item
    keep = ~is_mark
    grid = _nans((len(index), ends.size))
    grid[ids[keep], row[keep]] = numbers[keep]
    return _columns({name: grid[i] for name, i in index.items() if name != _MARK_KEY})


def _slow(records: Sequence[bytes]) -> dict[str, np.ndarray]:
    """The obvious decoder: wandb's Record class, one ``json.loads`` per item."""
    record = pb.Record()
    rows: list[dict[str, object]] = []
    for raw in records:
        record.ParseFromString(raw)
        rows.append({item_key(item): _json(item.value_json) for item in record.history.item})
    return _columns(rows_to_columns(rows))


def item_key(item: object) -> str:
    """A history, config or summary item's key: ``key``, else its ``nested_key`` parts joined
    with ".", as W&B shows them."""
    return item.key or ".".join(item.nested_key)


def _json(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:  # not JSON: not something wandb writes, so not a number to plot
        return None


def _columns(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``_step`` first as int64, then the other keys sorted (wandb writes them in any
    order), and rows without a ``_step`` dropped."""
    step = columns.pop(STEP, None)
    if step is None:
        return {STEP: np.empty(0, np.int64)}
    has = ~np.isnan(step)
    if not has.all():
        columns = {k: v[has] for k, v in columns.items()}
        step = step[has]
    return {STEP: step.astype(np.int64), **{k: columns[k] for k in sorted(columns)}}
