"""How fast runchain reads a local tree of run files, against what decoding them must cost.

    python benchmarks/bench_read.py                 # makes a 50 x 2,000 x 20 tree first (~1-2 min)
    python benchmarks/bench_read.py --dir DIR       # reuse a wandb/ folder
    python benchmarks/bench_read.py --runs 8 --steps 500 --deep 40 --repeats 2 --big 30  # quick look
    python benchmarks/bench_read.py --only-big      # only the one-big-file case (286 MB)

Every figure is a ratio of times taken in this one process, with the measurements
interleaved and repeated (median), so a noisy shared machine hits both sides alike.

- floor: ``Record.ParseFromString`` of every record of every file, and nothing else
  (records split from the files beforehand, untimed).
- value floor: the floor, plus every history value's JSON parsed once, one batch per file:
  what any Python reader built on wandb's classes must pay to return every value.
- naive: what runchain did first, one ``json.loads`` per history value.
- cold: ``open_source(dir)`` with an empty cache, then every run's full history in memory.
  "pool" lets runchain decode in processes on every core it may use; "serial" does not.
- every chain: ``open_source(dir)``, then every leaf's stitched history,
  ``source.histories()``: the runs of every chain read in one batch, then each chain
  stitched. "chain by chain" is a loop over ``source.history(leaf)`` instead, which
  decodes each chain's runs as it comes.
- warm: the same with the cache filled.  Targets: all history and every chain cold <= 1.0x
  the value floor, warm >= 50x faster than cold.
- returned arrays floor: every chain's columns (as many rows, of the dtypes, that
  ``histories()`` returns) allocated, filled from arrays in memory, summed and dropped as
  "every chain" does: what handing those arrays back costs any reader, whatever it caches.
  Every chain warm over it is what reading, cutting and stitching add; cold over it, the
  most that cold / warm could be.
- grown: the largest run file, read whole with an empty cache, against reading it again
  after it grew from half its bytes (the half read and cached first), as a live run's
  file grows, five times per repeat (each takes ~0.1 s, so one alone is noisy). Target: the
  median re-read / cold read <= 0.6.
- chain: the deepest chain's stitched history, peak memory (tracemalloc) over the size
  of the arrays returned. Target <= 2x.
- deep: a chain --deep runs long. Its files are written by this script in wandb's run
  file format, from wandb's own protobuf classes (making hundreds of real sequential
  runs would take many minutes), then read by runchain like any other folder.
- one big file (--big MB, default 286): one run file, written the same way, read as
  `runchain tree`, as its stitched history, and by `runchain chain --csv` (a real
  subprocess), cold and warm, each in a fresh process. Peak RSS is the kernel's count
  (numpy, protobuf's C allocations and mapped cache pages included), shown over the
  file's size and, above what importing runchain costs, over the size of the arrays
  returned. Target: <= 2x what is returned.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
from wandb.proto import wandb_internal_pb2 as pb

import runchain
import runchain.parallel
from runchain.readers import decode_once as local_tree
from runchain.core.stitch import rows_to_columns
from runchain.readers.local_runs import run_folders
from runchain.readers.record_log import scan_records

ROOT = Path(__file__).resolve().parent.parent


def make_tree(base: Path, runs: int, steps: int, metrics: int) -> Path:
    env = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", TQDM_DISABLE="1")
    for name in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        env[name] = str(base / name.lower())
    print(f"making a tree of {runs} runs x {steps} steps x {metrics} metrics with do_many.py ...",
          file=sys.stderr)
    subprocess.run([sys.executable, str(ROOT / "do_many.py"), "--n_runs", str(runs), "--n_steps",
                    str(steps), "--n_metrics", str(metrics), "--n_checkpoint_steps",
                    str(max(1, steps // 4)), "--workers", "2", "--project", "bench-read"],
                   env=env, check=True, stdout=subprocess.DEVNULL, cwd=base)
    return base / "wandb_dir" / "wandb"


def files_of(directory: Path) -> list[Path]:
    return [p for paths in run_folders(directory).values() for p in paths]


def floor(records: list[list[bytes]], fresh: bool) -> float:
    """ParseFromString of every record, into a fresh Record each time or one reused Record."""
    t0 = time.perf_counter()
    if fresh:
        for file_records in records:
            for raw in file_records:
                pb.Record().ParseFromString(raw)
    else:
        record = pb.Record()
        for file_records in records:
            for raw in file_records:
                record.ParseFromString(raw)
    return time.perf_counter() - t0


def value_floor(records: list[list[bytes]]) -> float:
    """The floor plus every history value: each record parsed into a fresh Record, and each
    file's history values' JSON parsed once, in one batch."""
    t0 = time.perf_counter()
    for file_records in records:
        values = []
        for raw in file_records:
            record = pb.Record()
            record.ParseFromString(raw)
            if record.WhichOneof("record_type") == "history":
                values.extend(item.value_json for item in record.history.item)
        json.loads("[" + ",".join(values) + "]")
    return time.perf_counter() - t0


def grown(path: Path, base: Path, cache: Path) -> tuple[float, float]:
    """Seconds to read run file ``path`` whole with an empty cache, and to read it again after
    it grew from half its bytes to all of them (the half read, and cached, first)."""
    data = path.read_bytes()
    folder = base / "grown" / "wandb" / path.parent.name
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    shutil.rmtree(cache, ignore_errors=True)
    target.write_bytes(data)
    whole = read_all(folder.parent)
    shutil.rmtree(cache, ignore_errors=True)
    target.write_bytes(data[:len(data) // 2])
    with warnings.catch_warnings():  # the half ends inside a record, as a live run's file does
        warnings.simplefilter("ignore")
        read_all(folder.parent)
    with target.open("ab") as f:
        f.write(data[len(data) // 2:])
    again = read_all(folder.parent)
    shutil.rmtree(base / "grown")
    return whole, again


def naive(files: list[Path]) -> float:
    """The first reader: parse each record, one json.loads per history value."""
    t0 = time.perf_counter()
    record = pb.Record()
    for path in files:
        rows = []
        for raw in scan_records(path.read_bytes()).records:
            record.ParseFromString(raw)
            if record.WhichOneof("record_type") == "history":
                rows.append({i.key or "/".join(i.nested_key): json.loads(i.value_json)
                             for i in record.history.item})
        rows_to_columns(rows)
    return time.perf_counter() - t0


def read_tree(directory: Path) -> float:
    """open_source: every run's lineage, as `runchain tree` reads it."""
    t0 = time.perf_counter()
    runchain.open_source(directory).tree
    return time.perf_counter() - t0


def read_all(directory: Path) -> float:
    """open_source + every run's full history in memory, as a report of every chain needs."""
    t0 = time.perf_counter()
    src = runchain.open_source(directory)
    segments = [runchain.Segment(info.id, None, 0) for info in src.runs]
    histories = src.fetch(segments, None)
    for info in src.runs:
        history = histories[info.id]
        for k in history:
            np.asarray(history[k]).sum()
    return time.perf_counter() - t0


def read_chain(directory: Path) -> float:
    """open_source + the deepest chain's stitched history, as `runchain chain` reads it."""
    t0 = time.perf_counter()
    src = runchain.open_source(directory)
    src.history(max(src.tree.nodes, key=lambda r: (src.tree.nodes[r].depth, r)))
    return time.perf_counter() - t0


def read_chains(directory: Path, one_by_one: bool = False) -> float:
    """open_source + every chain's stitched history: ``source.histories()``, which reads
    the runs of every chain in one batch, then stitches each leaf's chain; ``one_by_one``:
    a loop over ``source.history(leaf)`` instead (the only way before ``histories``, and
    what a runchain without it is measured with), decoding each chain's runs as it comes."""
    t0 = time.perf_counter()
    src = runchain.open_source(directory)
    if one_by_one or not hasattr(src, "histories"):
        chains = ((leaf, src.history(leaf)) for leaf, node in src.tree.nodes.items()
                  if not node.children)
    else:
        chains = src.histories()
    for _, history in chains:
        for column in history.values():
            if column.dtype.kind == "f":
                column.sum()
    return time.perf_counter() - t0


def read_chains_one_by_one(directory: Path) -> float:
    return read_chains(directory, one_by_one=True)


def returned_shapes(directory: Path) -> list[dict[str, tuple[int, np.dtype]]]:
    """Per chain, each column ``source.histories()`` returns: its rows and dtype."""
    return [{k: (v.size, v.dtype) for k, v in history.items()}
            for _, history in runchain.open_source(directory).histories()]


def returned_floor(shapes: list[dict[str, tuple[int, np.dtype]]]) -> float:
    """What handing back every chain's arrays costs any reader, whatever it knows: each
    chain's columns allocated and filled (from arrays already in memory), then summed and
    dropped as ``read_chains`` does."""
    longest = max((n for chain in shapes for n, _ in chain.values()), default=0)
    filled = {dtype: np.zeros(longest, dtype) for chain in shapes for _, dtype in chain.values()}
    t0 = time.perf_counter()
    for chain in shapes:
        history = {k: np.empty(n, dtype) for k, (n, dtype) in chain.items()}
        for k, (n, dtype) in chain.items():
            history[k][:] = filled[dtype][:n]
        for column in history.values():
            if column.dtype.kind == "f":
                column.sum()
    return time.perf_counter() - t0


def cold(read, directory: Path, cache: Path, parallel: bool) -> float:
    shutil.rmtree(cache, ignore_errors=True)
    saved = local_tree.PARALLEL_BYTES
    local_tree.PARALLEL_BYTES = saved if parallel else float("inf")
    try:
        return read(directory)
    finally:
        local_tree.PARALLEL_BYTES = saved


def chain_memory(directory: Path) -> tuple[str, int, float, float, float, float]:
    """The deepest chain: (leaf, runs, seconds as found, seconds warm, peak traced bytes /
    output bytes, output MB).

    Timed untraced first (decoding the chain's runs if the cache is cold), then once more
    under tracemalloc for memory. tracemalloc sees numpy's allocations; memory-mapped cache
    pages are file-backed and not counted (the kernel may drop them at any time).
    """
    src = runchain.open_source(directory)
    leaf = max(src.tree.nodes, key=lambda r: (src.tree.nodes[r].depth, r))
    t0 = time.perf_counter()
    src.history(leaf)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    src.history(leaf)
    warm = time.perf_counter() - t0
    tracemalloc.start()
    columns = src.history(leaf)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    out = sum(v.nbytes for v in columns.values())
    return leaf, src.tree.nodes[leaf].depth + 1, first, warm, peak / out, out / 1e6


# -- a deep chain, written in wandb's run file format --------------------------------

HEADER = b":W&B\xe1\xbe\x00"


def _chunks(body: bytes, pos: int) -> bytes:
    out, first = bytearray(), True
    while True:
        room = 32768 - (pos + len(out)) % 32768
        if room < 7:
            out += bytes(room)
            continue
        part, body = body[:room - 7], body[room - 7:]
        kind = (1 if not body else 2) if first else (4 if not body else 3)
        out += struct.pack("<IHB", zlib.crc32(part, zlib.crc32(bytes((kind,)))), len(part), kind)
        out += part
        first = False
        if not body:
            return bytes(out)


def run_records(run_id: str, parent: tuple[str, int, runchain.Breadcrumbs] | None, steps: int,
                metrics: int, checkpoint_every: int, rng: np.random.Generator):
    """A run's records, one at a time (a big run's would not fit in memory as messages);
    yields the run's breadcrumbs first."""
    crumbs = runchain.core.breadcrumbs.breadcrumbs_for(
        run_id, *(parent and (parent[0], f"run-{parent[0]}-checkpoint:step-{parent[1]}",
                              parent[1], parent[2]) or ()))
    yield crumbs
    run = pb.Record(run=pb.RunRecord(run_id=run_id, project="bench-deep"))
    run.run.config.update.add(key="runchain", value_json=json.dumps(crumbs.to_config()))
    yield run
    for start in range(0, steps, 10_000):  # values drawn in slices, for the same reason
        values = rng.random((min(steps - start, 10_000), metrics))
        for step in range(start, start + len(values)):
            record = pb.Record()
            for m in range(metrics):
                record.history.item.add(nested_key=[f"loss/{m:02d}"],
                                        value_json=repr(float(values[step - start, m])))
            record.history.item.add(nested_key=["_step"], value_json=str(step))
            record.history.item.add(nested_key=["global_step"],
                                    value_json=str(crumbs.global_offset + step))
            yield record
            if (step + 1) % checkpoint_every == 0:
                yield pb.Record(artifact=pb.ArtifactRecord(
                    name=f"run-{run_id}-checkpoint", type="checkpoint", digest=f"{run_id}-{step}",
                    metadata=json.dumps({"step": step}), aliases=[f"step-{step}", "latest"]))
    yield pb.Record(exit=pb.RunExitRecord(exit_code=0))


def write_run(folder: Path, run_id: str, parent: tuple[str, int, runchain.Breadcrumbs] | None,
              steps: int, metrics: int, checkpoint_every: int, rng: np.random.Generator
              ) -> runchain.Breadcrumbs:
    records = run_records(run_id, parent, steps, metrics, checkpoint_every, rng)
    crumbs = next(records)
    run_dir = folder / f"offline-run-20260101_000000-{run_id}"
    run_dir.mkdir(parents=True)
    with open(run_dir / f"run-{run_id}.wandb", "wb") as f:
        f.write(HEADER)
        pos = len(HEADER)
        for i, record in enumerate(records):
            record.num = i + 1
            data = _chunks(record.SerializeToString(), pos)
            f.write(data)
            pos += len(data)
    return crumbs


def make_deep(base: Path, depth: int, steps: int, metrics: int) -> Path:
    folder = base / "deep" / "wandb"
    rng = np.random.default_rng(0)
    parent = None
    for i in range(depth):
        run_id = f"deep{i:04d}"
        crumbs = write_run(folder, run_id, parent, steps, metrics, steps // 4, rng)
        parent = (run_id, steps // 2 - 1, crumbs)  # every run is cut at a non-final checkpoint
    return folder


# -- one big run file: peak memory, each read in a fresh process ---------------------

def make_big(base: Path, mb: float, metrics: int) -> Path:
    """One run of about ``mb`` MB: its steps sized from a small sample run's bytes per step."""
    rng = np.random.default_rng(0)
    sample = write_run(base / "sample", "sample00", None, 500, metrics, 125, rng)
    per_step = (base / "sample" / "offline-run-20260101_000000-sample00" /
                "run-sample00.wandb").stat().st_size / 500
    shutil.rmtree(base / "sample")
    del sample
    steps = max(8, int(mb * 1e6 / per_step))
    folder = base / "big" / "wandb"
    print(f"writing one run file of {steps} steps x {metrics} metrics (~{mb:.0f} MB) ...",
          file=sys.stderr)
    write_run(folder, "big00000", None, steps, metrics, steps // 4, rng)
    return folder


def measure(what: str, directory: Path, traced: bool) -> None:
    """In a fresh process (``--measure``): read as ``what`` says, print a JSON line of peak
    RSS (the kernel's count: numpy, protobuf's C allocations and mapped pages included),
    RSS after imports, seconds, bytes returned and, if ``traced``, tracemalloc's peak."""
    baseline = _high_water()
    if traced:
        tracemalloc.start()
    t0 = time.perf_counter()
    src = runchain.open_source(directory)
    tree = src.tree
    returned = 0
    if what == "history":
        leaf = max(tree.nodes, key=lambda r: (tree.nodes[r].depth, r))
        returned = sum(v.nbytes for v in src.history(leaf).values())
    seconds = time.perf_counter() - t0
    print(json.dumps({"peak": _high_water(),
                      "baseline": baseline, "seconds": seconds, "returned": returned,
                      "traced": tracemalloc.get_traced_memory()[1] if traced else None}))


def _high_water() -> int:
    """This process's peak RSS in bytes. Linux's VmHWM belongs to the process's own memory;
    getrusage's ru_maxrss survives exec, so a process started by this big one would report
    this one's peak."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        import resource
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


_PEAK_OF_CHILD = ("import resource, subprocess, sys, time; t0 = time.perf_counter(); "
                  "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode; "
                  "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, "
                  "time.perf_counter() - t0, rc)")


def peak_of(argv: list[str]) -> tuple[int, float]:
    """Peak RSS (bytes) and seconds of a command, run under a small watcher process."""
    out = subprocess.run([sys.executable, "-c", _PEAK_OF_CHILD, *argv], check=True,
                         capture_output=True, text=True).stdout.split()
    if out[2] != "0":
        raise SystemExit(f"{' '.join(argv)} exited {out[2]}")
    return int(out[0]), float(out[1])


def big_file(base: Path, mb: float, metrics: int, cache: Path) -> None:
    """`runchain tree`, the stitched history, and `runchain chain --csv` of one big run file,
    cold and warm, each in a fresh process; peaks relative to the file and to what is returned."""
    directory = make_big(base, mb, metrics)
    size = sum(p.stat().st_size for p in files_of(directory))
    me = [sys.executable, __file__, "--dir", str(directory), "--measure"]
    imports = peak_of([sys.executable, "-c", "import runchain.commands.cli, runchain.readers.from_folder"])[0]
    print(f"\none big run file: {size / 1e6:.0f} MB; a process that only imports runchain "
          f"peaks at {imports / 1e6:.0f} MB RSS")
    print(f"{'':<24}{'seconds':>8}{'peak RSS MB':>13}{'/ file':>8}{'above imports MB':>18}"
          f"{'/ returned':>12}{'traced MB':>11}")

    def row(name: str, seconds: float, peak: int, returned: int, traced: int | None) -> None:
        above = peak - imports
        per = f"{above / returned:.2f}" if returned else "-"
        print(f"{name:<24}{seconds:8.2f}{peak / 1e6:13.0f}{peak / size:8.2f}{above / 1e6:18.0f}"
              f"{per:>12}{'-' if traced is None else f'{traced / 1e6:.0f}':>11}")

    returned = {}
    for what in ("tree", "history"):
        for state in ("cold", "warm"):
            results = []
            for traced in (False, True):  # RSS and time untraced; tracemalloc's peak apart
                if state == "cold":
                    shutil.rmtree(cache, ignore_errors=True)
                out = subprocess.run(me + [what] + (["--traced"] if traced else []), check=True,
                                     capture_output=True, text=True).stdout
                results.append(json.loads(out.strip().splitlines()[-1]))
            plain, traced = results
            returned[what] = plain["returned"]
            row(f"{what} {state}", plain["seconds"], plain["peak"], plain["returned"],
                traced["traced"])
    csv_path = base / "big.csv"
    for state in ("cold", "warm"):
        if state == "cold":
            shutil.rmtree(cache, ignore_errors=True)
        peak, seconds = peak_of([sys.executable, "-m", "runchain", "chain", "big00000", "--dir",
                                 str(directory), "--csv", str(csv_path)])
        row(f"chain --csv {state}", seconds, peak, returned["history"], None)
    print(f"(chain --csv returns the stitched history, {returned['history'] / 1e6:.0f} MB of "
          f"arrays, as a {csv_path.stat().st_size / 1e6:.0f} MB CSV)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, help="an existing wandb/ folder (default: make one)")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--metrics", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--deep", type=int, default=200, help="runs in the deep chain")
    parser.add_argument("--big", type=float, default=286,
                        help="MB of the one-big-file case (0: skip it)")
    parser.add_argument("--only-big", action="store_true", help="run only the one-big-file case")
    parser.add_argument("--measure", choices=["tree", "history"], help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # one measurement of big_file, in this fresh process
        return measure(args.measure, args.dir, args.traced)
    base = Path(tempfile.mkdtemp(prefix="bench-read-"))
    cache = base / "cache"
    os.environ["RUNCHAIN_CACHE_DIR"] = str(cache)
    os.environ.setdefault("TQDM_DISABLE", "1")
    try:
        if args.only_big:
            return big_file(base, args.big, args.metrics, cache)
        directory = args.dir or make_tree(base, args.runs, args.steps, args.metrics)
        files = files_of(directory)
        size = sum(p.stat().st_size for p in files)
        records = [scan_records(p.read_bytes()).records for p in files]
        print(f"tree: {len(files)} run files, {size / 1e6:.0f} MB, "
              f"{sum(map(len, records))} records; {runchain.parallel.workers()} cores usable")
        shapes = returned_shapes(directory)
        returned = sum(n * dtype.itemsize for chain in shapes for n, dtype in chain.values())
        print(f"every chain: {len(shapes)} chains, {returned / 1e6:.1f} MB of arrays returned")
        sides = {
            "floor, fresh Record": lambda: floor(records, fresh=True),
            "floor, reused Record": lambda: floor(records, fresh=False),
            "value floor": lambda: value_floor(records),
            "naive read (all history)": lambda: naive(files),
            "tree cold, serial": lambda: cold(read_tree, directory, cache, False),
            "tree cold, pool": lambda: cold(read_tree, directory, cache, True),
            "chain cold, pool": lambda: cold(read_chain, directory, cache, True),
            "every chain cold, pool": lambda: cold(read_chains, directory, cache, True),
            "chain by chain cold, pool": lambda: cold(read_chains_one_by_one, directory, cache, True),
            "all history cold, serial": lambda: cold(read_all, directory, cache, False),
            "all history cold, pool": lambda: cold(read_all, directory, cache, True),
            "tree warm": lambda: read_tree(directory),
            "chain warm": lambda: read_chain(directory),
            "every chain warm": lambda: read_chains(directory),
            "returned arrays floor": lambda: returned_floor(shapes),
            "all history warm": lambda: read_all(directory),
        }
        largest = max(files, key=lambda p: p.stat().st_size)
        regrown: list[tuple[float, float]] = []
        times: dict[str, list[float]] = {k: [] for k in sides}
        for _ in range(args.repeats):  # interleaved, so drift hits every side alike
            for name, side in sides.items():
                times[name].append(side())
            regrown += [grown(largest, base, cache) for _ in range(5)]  # ~0.1 s each: noisy alone
        med = {k: statistics.median(v) for k, v in times.items()}
        strict, values = med["floor, fresh Record"], med["value floor"]
        print(f"{'':<28}{'seconds':>9}{'/ floor':>9}{'/ value floor':>15}")
        for name, t in med.items():
            print(f"{name:<28}{t:9.3f}{t / strict:9.2f}{t / values:15.2f}")
        for what in ("tree", "chain", "every chain", "all history"):
            print(f"{what}: cold (pool) / warm = {med[what + ' cold, pool'] / med[what + ' warm']:.0f}x")
        print(f"all history cold (pool) / value floor = {med['all history cold, pool'] / values:.2f}  "
              f"(target <= 1.0)")
        print(f"every chain cold (pool) / value floor = {med['every chain cold, pool'] / values:.2f}  "
              f"(target <= 1.0; warm >= 50x faster)")
        handed = med["returned arrays floor"]
        print(f"every chain warm / returned arrays floor = {med['every chain warm'] / handed:.2f}; "
              f"cold (pool) / that floor = {med['every chain cold, pool'] / handed:.0f}x (the most "
              f"cold / warm could be)")
        whole, again = (statistics.median(side) for side in zip(*regrown))
        ratio = statistics.median(a / w for w, a in regrown)  # each pair taken back to back
        print(f"grown file ({largest.stat().st_size / 1e6:.1f} MB; half read first, then all): "
              f"re-read {again:.3f} s / cold read {whole:.3f} s; median of {len(regrown)} "
              f"ratios {ratio:.2f}  (target <= 0.6)")

        leaf, depth, _, warm, ratio, mb = chain_memory(directory)
        print(f"deepest chain ({depth} runs, leaf {leaf}): stitched warm in {warm:.3f} s, "
              f"{mb:.1f} MB returned, peak traced memory {ratio:.2f}x that")
        if args.deep:
            deep = make_deep(base, args.deep, 1000, args.metrics)
            shutil.rmtree(cache, ignore_errors=True)
            t_tree = read_tree(deep)
            leaf, depth, first, warm, ratio, mb = chain_memory(deep)
            print(f"deep chain: {depth} runs x 1000 steps, each cut at step 499: tree cold "
                  f"{t_tree:.2f} s; chain cold (decoding its runs) {first:.2f} s, warm "
                  f"{warm:.3f} s; {mb:.1f} MB returned, peak traced memory {ratio:.2f}x that")
        if args.big:
            big_file(base, args.big, args.metrics, cache)
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
