"""Runs written by code other than runchain, with the installed wandb, offline, for real.

- ``original_root`` / ``original_child``: the original run-chaining example's contract as
  written: artifact ``run-<id>-checkpoint`` of type ``checkpoint``, no aliases given (wandb
  adds ``latest``), metadata ``{"run_step": N}``, ``checkpoint.json`` ``{"step", "model"}``,
  logged with ``art.save()``, implicit steps.
- ``plain``: any ``wandb.init(**kwargs)``, e.g. W&B's own ``fork_from`` and ``resume_from``.
- ``scripted``: a plain script with its own step axis (``define_metric``), explicit steps,
  and checkpoints of any artifact type, ``log_model`` among them.
- ``epochs``: an epoch loop as plain wandb users write it, offline or online: train rows on
  ``_step``, an ``epoch`` and ``val/*`` row ending each epoch (W&B's ``define_metric``
  recipe), and artifacts of any type, metadata and layout logged after chosen epochs.

Offline wandb refuses ``use_artifact`` (``TypeError: Cannot use artifact when in offline
mode.``), so ``append_use_artifact`` appends the record online wandb writes for it,
``Record(use_artifact=UseArtifactRecord(id, type, name))``, with ``name`` as the caller
typed it, in the run file's own chunk format.

Every function runs wandb in a subprocess with the caller's environment (``helpers.isolate``
points every W&B folder into a temporary directory) and returns what it made.
"""

from __future__ import annotations

import base64
import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

from wandb.proto import wandb_internal_pb2 as pb

BLOCK, HEADER = 32 * 1024, 7

_ORIGINAL = r'''
import json, os, sys, tempfile, wandb
project, n_steps, every, parent, version = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
run = wandb.init(project=project, config={"lr": 0.01})
error = None
if parent:  # online, the original child records its input edge here
    try:
        run.use_artifact(f"run-{parent}-checkpoint:{version}")
    except TypeError as e:
        error = str(e)
model = {"w": 0.0}
for step in range(n_steps):
    model["w"] += 0.1
    run.log({"loss": 1.0 / (step + 1), "w": model["w"]})
    if (step + 1) % every == 0:
        art = wandb.Artifact(f"run-{run.id}-checkpoint", type="checkpoint", metadata={"run_step": step})
        folder = tempfile.mkdtemp()
        with open(os.path.join(folder, "checkpoint.json"), "w") as f:
            json.dump({"step": step, "model": model}, f)
        art.add_file(os.path.join(folder, "checkpoint.json"))
        art.save()
run.finish()
print(json.dumps({"id": run.id, "use_artifact_error": error}))
'''

_PLAIN = r'''
import json, sys, wandb
kwargs, n, base = json.loads(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
run = wandb.init(**kwargs)
for i in range(n):
    run.log({"loss": base + i})
run.finish()
print(json.dumps({"id": run.id}))
'''

_SCRIPTED = r'''
import json, os, sys, tempfile, wandb
spec = json.loads(sys.argv[1])
run = wandb.init(project=spec["project"], name=spec.get("name"))
axis = spec.get("axis")
if axis:  # W&B's own way to put every metric on a step of the user's
    run.define_metric(axis)
    run.define_metric("*", step_metric=axis)
saves = {s["at"]: s for s in spec.get("saves", [])}
for i in range(spec["n"]):
    row = {"loss": spec.get("base", 0.0) + i}
    for key, (first, every) in spec.get("also", {}).items():  # logged on every row, no axis
        row[key] = first + every * i
    if axis:
        row[axis] = spec["axis0"] + spec["every"] * i
    if "first" in spec:
        run.log(row, step=spec["first"] + i)
    else:
        run.log(row)
    if i in saves:
        s = saves[i]
        step = row[axis] if axis else spec.get("first", 0) + i
        path = os.path.join(tempfile.mkdtemp(), "checkpoint.json")
        with open(path, "w") as f:
            json.dump({"step": step}, f)
        if s["type"] == "log_model":
            run.log_model(path, name=s["name"], aliases=[f"step-{step}"])
        else:
            art = wandb.Artifact(s["name"], type=s["type"])
            art.add_file(path)
            run.log_artifact(art, aliases=[f"step-{step}"])
run.finish()
print(json.dumps({"id": run.id}))
'''

_EPOCHS = r'''
import json, os, sys, tempfile, wandb
spec = json.loads(sys.argv[1])
run = wandb.init(project=spec["project"], name=spec["name"])
refused = None
for name, _ in spec.get("uses", []):  # online, the input edges; offline wandb refuses them
    try:
        run.use_artifact(name)
    except TypeError as e:
        refused = str(e)
if spec.get("declare"):  # W&B's recipe: some metrics on epoch, the rest on _step
    run.define_metric("epoch")
    run.define_metric(spec["declare"], step_metric="epoch")
step = -1
for epoch in range(spec.get("epoch0", 0), spec.get("epoch0", 0) + spec["epochs"]):
    for i in range(5):
        step += 1
        run.log({"train/loss": 100.0 * epoch + i})
    step += 1
    run.log({"epoch": epoch, "val/loss": 100.0 * epoch + 99})
    for save in [s for s in spec.get("saves", []) if s["epoch"] == epoch]:
        fill = lambda v: step if v == "$step" else epoch if v == "$epoch" else v
        art = wandb.Artifact(save["name"], type=save["type"],
                             metadata={k: fill(v) for k, v in save.get("metadata", {}).items()})
        folder = tempfile.mkdtemp()
        for rel, content in save["files"].items():
            os.makedirs(os.path.dirname(os.path.join(folder, rel)), exist_ok=True)
            with open(os.path.join(folder, rel), "w") as f:
                f.write(json.dumps({k: fill(v) for k, v in content.items()})
                        if isinstance(content, dict) else content)
        art.add_dir(folder, name=save.get("under"))
        run.log_artifact(art)
run.summary.update(spec.get("summary", {}))  # set, not logged: no history key
run.finish()
print(json.dumps({"id": run.id, "refused": refused}))
'''


def _python(code: str, wandb_dir: Path, *args: object) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=wandb_dir.parent,
                          env=os.environ.copy(), capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise AssertionError(f"wandb subprocess exited {proc.returncode}:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_files(wandb_dir: Path, run_id: str) -> list[Path]:
    """Every run file of ``run_id``, oldest folder first."""
    return sorted(Path(wandb_dir).glob(f"*run-*-{run_id}*/run-{run_id}.wandb"))


def original_root(wandb_dir: Path, n_steps: int = 30, every: int = 10, project: str = "orig") -> str:
    """A root of the original example: checkpoints v0, v1, v2 at steps 9, 19, 29."""
    return _python(_ORIGINAL, wandb_dir, project, n_steps, every, "", "")["id"]


def original_child(wandb_dir: Path, parent: str, label: str, n_steps: int = 10, every: int = 5,
                   project: str = "orig") -> str:
    """A child that (online) calls ``use_artifact(f"run-{parent}-checkpoint:{label}")``."""
    made = _python(_ORIGINAL, wandb_dir, project, n_steps, every, parent, label)
    assert made["use_artifact_error"] == "Cannot use artifact when in offline mode.", made
    append_use_artifact(run_files(wandb_dir, made["id"])[-1], f"run-{parent}-checkpoint:{label}")
    return made["id"]


def plain(wandb_dir: Path, n: int, base: float = 0.0, **init: object) -> str:
    """``wandb.init(**init)``, then ``n`` rows with ``loss = base + i`` at implicit steps."""
    return _python(_PLAIN, wandb_dir, json.dumps(init), n, base)["id"]


def _chunks(body: bytes, offset: int) -> bytes:
    """One record's chunks from file offset ``offset`` (LevelDB log format, 32 KiB blocks)."""
    out, first = bytearray(), True
    while True:
        room = BLOCK - (offset + len(out)) % BLOCK
        if room < HEADER:
            out += bytes(room)  # a block tail too short for a header is padding
            continue
        part, body = body[:room - HEADER], body[room - HEADER:]
        kind = (1 if not body else 2) if first else (4 if not body else 3)
        crc = zlib.crc32(part, zlib.crc32(bytes((kind,)))) & 0xFFFFFFFF
        out += struct.pack("<IHB", crc, len(part), kind) + part
        first = False
        if not body:
            return bytes(out)


def append_use_artifact(path: Path, name: str, type: str = "checkpoint") -> None:
    """Append the record ``run.use_artifact(name)`` writes online (its id is the server's,
    so a stand-in here). Online it sits after the run record; readers must not care where."""
    artifact_id = base64.b64encode(b"Artifact:%d" % zlib.crc32(name.encode())).decode()
    record = pb.Record(use_artifact=pb.UseArtifactRecord(id=artifact_id, type=type, name=name))
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(_chunks(record.SerializeToString(), size))


def scripted(wandb_dir: Path, project: str, n: int, **spec: object) -> str:
    """A plain script's run: ``n`` rows of ``loss = base + i``, at implicit steps or from
    step ``first``; with ``axis``, ``define_metric("*", step_metric=axis)`` and the axis
    logged as ``axis0 + every * i``; ``saves``: ``[{"at": i, "type", "name"}]`` artifacts
    holding ``checkpoint.json`` with the row's step on the run's axis, type ``"log_model"``
    for ``run.log_model``. Each has the alias ``step-<step>``. ``also``: ``{key: [first,
    every]}``, each logged on every row as ``first + every * i`` (no define_metric)."""
    return _python(_SCRIPTED, wandb_dir, json.dumps(dict(spec, project=project, n=n)))["id"]


def epochs(wandb_dir: Path, project: str, name: str, n: int, **spec: object) -> str:
    """A run named ``name`` of ``n`` epochs (from ``epoch0``), each 5 rows of ``train/loss =
    100 * epoch + i`` and a row of ``epoch`` and ``val/loss = 100 * epoch + 99``, implicit
    steps; ``declare``: ``define_metric(declare, step_metric="epoch")`` after
    ``define_metric("epoch")``; ``saves``: ``[{"epoch", "name", "type", "metadata", "files",
    "under"}]`` logged after that epoch's last row (``files``: path -> text, or a JSON object;
    ``"$step"`` and ``"$epoch"`` in metadata or an object stand for the row's ``_step`` and
    epoch); ``summary``: keys set in ``run.summary`` at the end, never logged; ``uses``: ``[(name, type)]`` given to ``use_artifact``, in order (offline its
    records are appended, as online wandb writes them)."""
    made = _python(_EPOCHS, wandb_dir, json.dumps(dict(spec, project=project, name=name, epochs=n)))
    online = os.environ.get("WANDB_MODE") == "online"
    assert made["refused"] is None if online or not spec.get("uses") else made["refused"], made
    for used, type in [] if online else spec.get("uses", []):
        append_use_artifact(run_files(wandb_dir, made["id"])[-1], used, type)
    return made["id"]
