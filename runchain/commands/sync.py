"""Upload offline run trees with ``wandb sync``, then attach their input edges on W&B.

Offline, wandb refuses ``use_artifact``, so a resumed run's input edge lives only in its
breadcrumbs (``config["runchain"]``). ``runchain sync`` finishes the job:

1. **Plan** (``sync_plan``). Every run under the folder, parents before children. A run
   folder that wandb already marked synced (``run-<id>.wandb.synced``, which ``wandb sync``
   writes), that was logged online (``run-*``), or that an earlier ``runchain sync``
   uploaded is not uploaded again, but its edge is still checked.
2. **Upload** each run's pending folders with wandb's own ``wandb sync`` (``upload_run``,
   the one boundary), ``jobs`` at once; a child starts only after its parent finished.
3. **Link.** For each run whose breadcrumbs name a parent checkpoint:
   ``api.run(child).use_artifact(api.artifact(ref))``, unless ``used_artifacts()``
   already holds it. A parent that is not local but is on W&B links the same way.
4. **Resume.** What is done is kept in ``<dir>/.runchain-sync.json`` (written atomically),
   so a sync that stopped continues where it stopped. runchain never changes or deletes
   wandb's files (``wandb sync`` adds its own bookkeeping, the ``.synced`` marker among it).
5. **One at a time.** A sync holds ``<dir>/.runchain-sync.lock`` from the plan to the last
   edge (``sync_lock``); a second sync of the folder stops at once, naming the first one's
   process. A dry run changes nothing and takes no lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

from ..core.contract import CHECKPOINT_TYPE, artifact_name
from ..errors import SyncError, SyncLockedError
from ..parallel import ParentFirstError, parent_first, threads
from ..readers import default_wandb_dir
from ..readers.local_runs import OFFLINE_PREFIX  # noqa: F401  (this module's too)
from ..wandb_io.api import entity_of, open_api, wandb_requests
from .sync_plan import (STATE_FILE, PlannedRun, is_synced,  # noqa: F401
                        load_state, plan, save_state)  # the plan's names, as this module's too


@dataclasses.dataclass(frozen=True)
class Link:
    """What happened to one edge."""

    run_id: str
    path: str  # the child on W&B, entity/project/run_id
    ref: str  # the parent checkpoint on W&B, entity/project/run-<id>-checkpoint:step-<s>
    status: str  # "linked", "already linked" or "unlinkable"
    reason: str | None = None


@dataclasses.dataclass
class SyncResult:
    runs: list[PlannedRun]  # the plan, parents before children
    uploaded: list[str]  # run ids uploaded by this call, in the order they finished
    links: list[Link]  # one per edge, in plan order

    @property
    def problems(self) -> list[PlannedRun]:
        """The runs left alone, each with its ``problem``."""
        return [item for item in self.runs if item.problem]

    @property
    def unlinkable(self) -> list[Link]:
        return [link for link in self.links if link.status == "unlinkable"]


# -- the boundary: wandb's own upload ----------------------------------------------------

def wandb_sync_args(folders: Sequence[Path], entity: str, project: str) -> list[str]:
    """What follows ``wandb sync`` for one run (``tests/test_wandb_contract.py`` checks them)."""
    return ["--entity", entity, "--project", project, *map(str, folders)]


TIMEOUT = 3600.0  # seconds one `wandb sync` may take; it retries an unreachable server long


def upload_run(folders: Sequence[Path], entity: str, project: str,
               timeout: float = TIMEOUT) -> None:
    """Upload one run's folders (several when resumed in place, oldest first) with
    ``python -m wandb sync``. wandb syncs the files of one run in order of start time.

    Raises:
        SyncError: ``wandb sync`` exited non-zero, or took longer than ``timeout`` seconds
            (it is stopped); the message ends with its last lines.
    """
    cmd = [sys.executable, "-m", "wandb", "sync", *wandb_sync_args(folders, entity, project)]
    try:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        raise SyncError(f"`wandb sync` took more than {timeout:g} s for "
                        f"{', '.join(f.name for f in folders)} and was stopped; check that W&B "
                        f"is reachable (WANDB_BASE_URL), or pass a longer --timeout") from None
    if proc.returncode != 0:
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        raise SyncError(f"`wandb sync` exited {proc.returncode} for "
                          f"{', '.join(f.name for f in folders)}: {tail}")


# -- one sync at a time ----------------------------------------------------------------------

LOCK_FILE = ".runchain-sync.lock"  # next to STATE_FILE; exists only while a sync runs


def _holder(text: str) -> str:
    """Who the lock file's text says holds it: ``"pid 123, started 2026-12-04 05:01:02 UTC"``
    (the file is anyone's to edit: only digits and printable characters are kept)."""
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    pid = fields["pid"].strip() if fields.get("pid", "").strip().isdigit() else "?"
    started = "".join(c for c in fields.get("started", "") if c.isprintable())[:40]
    return f"pid {pid}" + (f", started {started}" if started else "")


def _locked(path: Path, text: str) -> SyncLockedError:
    return SyncLockedError(
        f"another `runchain sync` ({_holder(text)}) is syncing {path.parent}; wait for it to "
        f"finish and run `runchain sync` again (it continues where that one stopped), or, if "
        f"no sync is running, delete {path}")


def _open_lock(path: Path) -> int:
    """The lock file, open and locked by this process (``flock``: the OS releases it when
    the process dies, however it dies); retried when the file was removed meanwhile."""
    import fcntl
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | vars(os).get("O_NOFOLLOW", 0), 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
            os.close(fd)
            raise _locked(path, text) from None
        except BaseException:
            os.close(fd)
            raise
        try:  # the holder we waited on removed the file: lock the one there now
            if os.stat(path, follow_symlinks=False).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextlib.contextmanager
def sync_lock(root: Path) -> Iterator[None]:
    """Hold ``<root>/.runchain-sync.lock`` for a block: one sync of a folder at a time.

    The file holds the holder's pid and start time, for the message a second sync gives. A
    lock left by a process that died is taken over, with a warning. Where ``fcntl`` is
    missing (Windows) the file is created exclusively, and a stale one must be deleted.

    Raises:
        SyncLockedError: another process holds the lock; the message names it.
        SyncError: the lock file cannot be created (a read-only folder).
    """
    path = root / LOCK_FILE
    try:
        if os.name == "posix":
            fd = _open_lock(path)
        else:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise _locked(path, path.read_text(errors="replace")) from None
    except OSError as e:
        raise SyncError(f"cannot create the sync lock {path}: {e.strerror}; `runchain sync` "
                        f"needs to write in {root}") from None
    try:
        old = os.pread(fd, 4096, 0).decode("utf-8", "replace") if os.name == "posix" else ""
        if old.strip():  # a holder that ended cleanly removed the file
            warnings.warn(f"took over the sync lock {path} from {_holder(old)}, which is no "
                          f"longer running (it stopped without releasing it)", stacklevel=2)
        os.ftruncate(fd, 0)
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        os.write(fd, f"pid={os.getpid()}\nstarted={started}\n".encode())
        yield
    finally:
        if os.name != "posix":  # Windows removes no open file
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # still locked on POSIX, so no one locks a file about to vanish
        if os.name == "posix":
            os.close(fd)


# -- upload, link, sync ----------------------------------------------------------------------

def _upload(root: Path, runs: list[PlannedRun], state: dict[str, Any], jobs: int,
            timeout: float) -> list[str]:
    """Upload every run with pending folders, ``jobs`` at once, each after its parent.

    Raises:
        SyncError: an upload failed; the uploads in flight are let finish and recorded.
    """
    todo = {item.run_id: item for item in runs if item.pending}

    def upload(run_id: str) -> None:
        upload_run(todo[run_id].pending, todo[run_id].entity, todo[run_id].project,
                   timeout=timeout)

    def record(run_id: str) -> None:
        for folder in todo[run_id].pending:
            state["uploaded"][folder.name] = todo[run_id].path
        save_state(root, state)

    try:
        return parent_first({run_id: item.parent for run_id, item in todo.items()}, upload,
                            jobs, "uploading (wandb sync)", done=record)
    except ParentFirstError as e:
        raise SyncError(
            f"uploading run {e.key} failed: {e.error}. {len(e.finished)} run(s) uploaded in this "
            f"call are recorded in {root / STATE_FILE}; run `runchain sync` again with the same "
            f"options to continue where it stopped") from e.error


def _target(item: PlannedRun, by_id: dict[str, PlannedRun]) -> tuple[str, str | None]:
    """The parent checkpoint's W&B path and, if it cannot be linked, why."""
    edge = item.edge
    if edge.ref is None:
        return f"{artifact_name(edge.parent_run)}:?", edge.problem
    if edge.local:  # where this sync uploaded it (or where it was logged online)
        parent = by_id[edge.parent_run]
        entity, project = parent.entity, parent.project
    else:  # already on W&B: where the breadcrumbs say, else next to the child
        entity, project = edge.ref.entity or item.entity, edge.ref.project or item.project
    ref = f"{entity}/{project}/{edge.ref.short}"
    if item.project is None or project is None:
        return ref, f"run {item.run_id} or its parent records no project; pass --to-project"
    return ref, None


def _link(api: Any, item: PlannedRun, ref: str) -> Link:
    """Attach ``ref`` as the input edge of ``item`` unless W&B lists it as used already."""
    path, edge = item.path, item.edge
    with wandb_requests(f"the edge {path} <- {ref}"):
        try:
            artifact = api.artifact(ref, type=CHECKPOINT_TYPE)
        except ValueError as e:  # wandb: the project or the artifact does not exist
            where = ("was uploaded from this folder, but W&B does not list the checkpoint"
                     if edge.local else "is neither in this folder nor on W&B")
            return Link(item.run_id, path, ref, "unlinkable",
                        f"parent {edge.parent_run} {where} ({e}); upload the parent's run "
                        f"folder, or fix its breadcrumbs, then run `runchain sync` again")
        try:
            remote = api.run(path)
        except ValueError as e:  # wandb's RunNotFoundError
            return Link(item.run_id, path, ref, "unlinkable",
                        f"run {path} is not on W&B ({e}); check that `wandb sync` uploaded "
                        f"it, then run `runchain sync` again")
        if any(used.id == artifact.id for used in remote.used_artifacts()):
            return Link(item.run_id, path, ref, "already linked")
        remote.use_artifact(artifact)
    return Link(item.run_id, path, ref, "linked")


def sync(dir: str | Path | None = None, *, entity: str | None = None,
         project: str | None = None, jobs: int = 4, api: Any = None, timeout: float = TIMEOUT,
         only_project: str | None = None) -> SyncResult:
    """Upload the offline runs under ``dir`` with ``wandb sync`` and link their edges.

    Args:
        dir: a ``wandb/`` folder; default ``$WANDB_DIR/wandb``, else ``./wandb``.
        entity: the W&B entity to upload to; default the run's own, else the API key's.
        project: the W&B project to upload to; default each run's own.
        jobs: uploads (and link requests) at once; a child waits for its parent's upload.
        api: a ``wandb.Api`` to link with; default a new one.
        timeout: seconds one ``wandb sync`` may take before it is stopped.
        only_project: sync only the runs of this W&B project.

    Returns:
        A ``SyncResult``; ``result.unlinkable`` lists the edges that could not be attached.

    Raises:
        CredentialsError: no W&B credentials; checked before anything is read or uploaded.
        SyncError: ``wandb sync`` failed for a run; what finished is recorded, so
            calling ``sync`` again continues.
        SyncLockedError: another sync of ``dir`` is running (a ``SyncError``); nothing
            was read or uploaded.
        SourceError: a request to W&B failed; the message names the server.
        RunNotFoundError, CycleError: as ``plan``.

    Example:
        >>> result = sync("wandb", project="llm")  # doctest: +SKIP
        >>> [link.reason for link in result.unlinkable]
        []
    """
    api = api or open_api("`runchain sync` uploads to W&B, so it",
                          hint=". `runchain sync --dry-run` shows the plan without them")
    root = Path(dir) if dir is not None else default_wandb_dir()
    # a missing folder takes no lock: the plan says what is wrong with it
    with sync_lock(root) if root.is_dir() else contextlib.nullcontext():
        runs = plan(root, entity=entity, project=project, only_project=only_project)
        if any(item.entity is None for item in runs):
            default = entity_of(api, None, "the runs that record none")
            runs = [item if item.entity else dataclasses.replace(item, entity=default)
                    for item in runs]
        missing = [item.run_id for item in runs if item.pending and not item.project]
        if missing:  # --to-project
            raise SyncError(f"run(s) {', '.join(missing)} record no W&B project; pass "
                            f"--to-project")

        state = load_state(root)
        uploaded = _upload(root, runs, state, max(1, jobs), timeout)

        by_id = {item.run_id: item for item in runs}
        links: dict[str, Link] = {}
        calls = []
        for item in runs:
            if item.edge is None:
                continue
            ref, problem = _target(item, by_id)
            if problem is not None:
                links[item.run_id] = Link(item.run_id, item.path, ref, "unlinkable", problem)
            elif f"{item.path} <- {ref}" in state["linked"]:
                links[item.run_id] = Link(item.run_id, item.path, ref, "already linked")
            else:
                calls.append((item.run_id, _link, (api, item, ref)))
        for run_id, link in threads(calls, max(1, jobs), "linking edges"):
            links[run_id] = link
            if link.status != "unlinkable":
                state["linked"].add(f"{link.path} <- {link.ref}")
                save_state(root, state)
        return SyncResult(runs, uploaded,
                          [links[item.run_id] for item in runs if item.run_id in links])
