"""The checkpoint contract, in code: names, aliases, references, checkpoint.json, steps and axes.

Everything here is pure: no wandb calls, no file access. See ``docs/contract.md``. What a
run records of its place in the tree (its breadcrumbs) is ``breadcrumbs``.

Steps: a *local* step is a run's step on its own axis: wandb's ``_step`` by default, or
the step metric the run declares in its breadcrumbs (a framework's ``train/global_step``);
a *global* step is its place on the chain, ``global_offset + local step``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Iterable, Mapping

from ..errors import CheckpointError, ReferenceSyntaxError

CHECKPOINT_TYPE = "checkpoint"  # artifact type of every checkpoint (the output edge)
CHECKPOINT_FILE = "checkpoint.json"  # JSON object with the local "step"; written last
CONFIG_KEY = "runchain"  # run.config key holding the breadcrumbs
SUMMARY_CHECKPOINTS = "checkpoints"  # run.summary["runchain"]["checkpoints"]: steps saved
CHAIN_VIEW_KEY = "runchain_chain"  # config of a `runchain publish` run; readers leave it out
STEP_METRIC = "global_step"  # history key, declared as the step metric of every other key
LOCAL_STEP = "_step"  # wandb's own history key: a run's local step
LATEST = "latest"
MODEL_TYPE = "model"  # what W&B's HF and Lightning integrations log their checkpoints as
HF_STEP_METRIC = "train/global_step"  # the step metric WandbCallback declares
LIGHTNING_STEP_METRIC = "trainer/global_step"  # the step metric WandbLogger declares
INT64_MAX = 2**63 - 1  # steps are int64 in every array runchain builds
STEP_LIMIT = 2.0**63  # a logged float below this is a step (as_step); int64 holds its floor

_ID = r"[A-Za-z0-9_.\-]+"
_NAME_RE = re.compile(rf"^run-(?P<run_id>{_ID})-checkpoint$")
_ALIAS_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")


def checkpoint_label(step: int, aliases: Any, version: str) -> str:
    """How a reference names a checkpoint so that it exists on W&B: its alias
    ``step-<step>`` where it has one (runchain's own), else its version ``vN``.

    Example:
        >>> checkpoint_label(9, ["latest"], "v0"), checkpoint_label(9, ["step-9"], "v0")
        ('v0', 'step-9')
    """
    return step_alias(step) if step_alias(step) in aliases else version


def is_step(value: Any) -> bool:
    """The one rule for a step: a non-negative integer within int64. JSON ``true`` is not one.

    Example:
        >>> [is_step(v) for v in (0, 39, -1, 2.0, True, "5", 2**63)]
        [True, True, False, False, False, False, False]
    """
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT64_MAX


def as_step(value: Any) -> int | None:
    """The one rule for a logged number as a step: a step is itself; a finite float from 0 up
    to (not including) 2**63 is its floor, as W&B's charts place a fractional step; anything
    else (negative, NaN, infinite, beyond int64, a boolean, a string) is None.

    Example:
        >>> [as_step(v) for v in (39, 15.0, 2.5, -1, float("nan"), True, 2.0**63, "5")]
        [39, 15, 2, None, None, None, None, None]
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int):
        return value if is_step(value) else None
    return math.floor(value) if 0 <= value < STEP_LIMIT else None  # NaN fails both


def fork_point(run_id: str, branch_run: Any, branch_step: Any) -> tuple[str, int] | None:
    """The one rule for a W&B fork: ``wandb.init(fork_from=f"{parent}?_step={s}")`` records a
    branch point (parent, s); the fork's own ``_step`` then starts at ``int(s) + 1``. Returns
    (parent, the parent's last step it keeps, inclusive), or None: no fork, a rewind of the
    run itself (``resume_from``), or a step that is not a non-negative number.

    Example:
        >>> fork_point("b", "a", 15.0), fork_point("a", "a", 15.0)
        (('a', 15), None)
    """
    if not isinstance(branch_run, str) or not branch_run or branch_run == run_id:
        return None
    step = as_step(branch_step)
    return None if step is None else (branch_run, step)


def config_branch_point(config: Mapping[str, Any]) -> tuple[str, Any] | None:
    """The branch point wandb 0.19 and older record for ``fork_from`` / ``resume_from``:
    only in the run's config, as ``_wandb.branch_point = {"run_id": R, "step": S}`` (newer
    SDKs write the run record's own ``branch_point``). Returns (R, S) as recorded, or None.

    Example:
        >>> config_branch_point({"_wandb": {"branch_point": {"run_id": "a", "step": 15}}})
        ('a', 15)
    """
    wandb_keys = config.get("_wandb")
    branch = wandb_keys.get("branch_point") if isinstance(wandb_keys, Mapping) else None
    if not isinstance(branch, Mapping) or not isinstance(branch.get("run_id"), str):
        return None
    return branch["run_id"], branch.get("step")


def declared_axis(declared: Mapping[str, str], logged: Iterable[str] | None = None) -> str | None:
    """The step metric a run declared (``define_metric``) for all its metrics: for ``*``;
    else, given the metrics it ``logged``, the one it gave every one of them (a ``*``
    declaration expanded, as an older sender uploaded it); None otherwise. A declaration for
    *some* metrics (W&B's recipe ``define_metric("val/*", step_metric="epoch")``) moves
    only those metrics' charts: the run stays on ``_step``.

    Example:
        >>> declared_axis({"*": "epoch"}), declared_axis({"val/*": "epoch"})
        ('epoch', None)
        >>> declared_axis({"loss": "gs", "acc": "gs"}, ["loss", "acc", "gs"])
        'gs'
    """
    if "*" in declared:
        return declared["*"]
    if logged is None:
        return None
    axes = set(declared.values())
    given = {declared.get(metric) for metric in logged if metric not in axes}
    return given.pop() if len(given) == 1 and None not in given else None


def checkpoint_json_paths(names: Iterable[str]) -> list[str]:
    """The paths in an artifact that are a ``checkpoint.json``, at any depth
    (``add_dir(folder, name="step-20")`` puts it at ``step-20/checkpoint.json``).

    Example:
        >>> checkpoint_json_paths(["ckpt.pt", "step-20/checkpoint.json", "my_checkpoint.json"])
        ['step-20/checkpoint.json']
    """
    return [n for n in names if n == CHECKPOINT_FILE or n.endswith("/" + CHECKPOINT_FILE)]


def checkpoint_file(names: Iterable[str]) -> str | None:
    """The path of an artifact's one ``checkpoint.json`` (``checkpoint_json_paths``), None
    when it holds none.

    Raises:
        CheckpointError: it holds several; runchain does not guess which one is meant.

    Example:
        >>> checkpoint_file(["weights.pt", "step-20/checkpoint.json"]), checkpoint_file([])
        ('step-20/checkpoint.json', None)
    """
    paths = checkpoint_json_paths(names)
    if len(paths) > 1:
        shown = ", ".join(sorted(paths)[:4]) + (", ..." if len(paths) > 4 else "")
        raise CheckpointError(
            f"it holds {len(paths)} {CHECKPOINT_FILE} files ({shown}), and runchain does not "
            f"guess which one is the checkpoint's; keep one, or log the step in its metadata "
            f"(metadata={{\"step\": N}}); see docs/contract.md")
    return paths[0] if paths else None


def config_declared_axis(config: Mapping[str, Any], logged: Iterable[str] = ()) -> str | None:
    """The step metric a run declared with ``define_metric`` for all the metrics it
    ``logged``, as W&B keeps the declarations online: its raw config's ``_wandb.m``, the
    metric definitions wandb's sender uploads, each a ``MetricRecord`` as a dict keyed by
    field number (``"1"`` name, ``"2"`` glob, ``"4"`` step_metric, ``"5"``
    step_metric_index, 1-based into the list). wandb-core (0.31) sends a glob as it is
    (``{"2": "*", "5": 1}``), as the HTTP stand-in, which keeps what it sends, shows; an
    older sender sent it expanded, one entry per metric logged, which ``declared_axis``'s
    rule for ``logged`` covers. Not checked against W&B.

    Example:
        >>> config_declared_axis({"_wandb": {"m": [{"1": "gs"}, {"1": "loss", "5": 1}]}}, ["loss"])
        'gs'
    """
    wandb_keys = config.get("_wandb")
    entries = wandb_keys.get("m") if isinstance(wandb_keys, Mapping) else None
    if not isinstance(entries, list):
        return None
    entries = [e if isinstance(e, Mapping) else {} for e in entries]
    declared = {}
    for defined in entries:
        name, step, index = defined.get("1") or defined.get("2"), defined.get("4"), defined.get("5")
        if not step and type(index) is int and 1 <= index <= len(entries):
            step = entries[index - 1].get("1")
        if isinstance(name, str) and isinstance(step, str) and step:
            declared[name] = step
    return declared_axis(declared, logged)


def step_metric_of(value: Any) -> str:
    """The axis a run's steps, or a checkpoint's step, are on: ``value`` when it names a
    step metric (a non-empty string, as breadcrumbs or checkpoint metadata record it),
    else ``_step``.

    Example:
        >>> step_metric_of("train/global_step"), step_metric_of(None), step_metric_of(3)
        ('train/global_step', '_step', '_step')
    """
    return value if isinstance(value, str) and value else LOCAL_STEP


def continues_axis(parent_metric: str, child_metric: str) -> bool:
    """The one rule for a child whose steps go on from its parent's: both are on the same
    declared step metric (a framework's global step continues across a resume), so the
    child is not offset a second time. ``_step`` starts again at 0 in every new run, so a
    child on ``_step`` never continues (a W&B fork is the exception ``fork_point`` handles).

    Example:
        >>> continues_axis("train/global_step", "train/global_step"), continues_axis("_step", "_step")
        (True, False)
    """
    return parent_metric == child_metric != LOCAL_STEP


def user_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A run's config as its user set it: without runchain's breadcrumbs and wandb's own
    ``_wandb`` key."""
    return {k: v for k, v in config.items() if k not in (CONFIG_KEY, "_wandb", CHAIN_VIEW_KEY)}


def is_chain_view(config: Mapping[str, Any]) -> bool:
    """Whether a run is a ``runchain publish`` chain view: a view of runs, not a run of the
    tree, so readers leave it out."""
    return CHAIN_VIEW_KEY in config


def artifact_name(run_id: str) -> str:
    """Name of the checkpoint artifact collection of a run: ``run-<run_id>-checkpoint``."""
    return f"run-{run_id}-checkpoint"


def step_alias(step: int) -> str:
    """Alias of the checkpoint saved at local step ``step``: ``step-<step>``."""
    return f"step-{step}"


def alias_step(alias: str) -> int | None:
    """The step a ``step-<step>`` alias names, ``step_alias`` read back exactly, else None:
    for ``latest``, a version ``vN``, any other alias, ``step-007`` (not what ``step_alias``
    writes) or a step that is not one (``is_step``).

    Example:
        >>> alias_step("step-39"), alias_step("latest"), alias_step("step-007")
        (39, None, None)
    """
    match = re.fullmatch(r"step-(0|[1-9][0-9]{0,18})", alias)
    return int(match[1]) if match and is_step(int(match[1])) else None


@dataclasses.dataclass(frozen=True)
class CheckpointRef:
    """A parsed checkpoint reference. ``entity``/``project`` are None when not given."""

    run_id: str
    alias: str = LATEST  # an alias ("latest", "step-39") or a version ("v3")
    entity: str | None = None
    project: str | None = None

    @property
    def name(self) -> str:
        return artifact_name(self.run_id)

    @property
    def short(self) -> str:
        """``run-<id>-checkpoint:<alias>``, without entity and project."""
        return f"{self.name}:{self.alias}"

    def __str__(self) -> str:
        prefix = "/".join(p for p in (self.entity, self.project) if p)
        return f"{prefix}/{self.short}" if prefix else self.short


def parse_ref(text: str) -> CheckpointRef:
    """Parse a checkpoint reference in any accepted form.

    Accepted: ``entity/project/run-<id>-checkpoint:<alias or vN>``,
    ``project/run-<id>-checkpoint:<alias or vN>``, ``run-<id>-checkpoint:<alias or vN>``,
    ``<run_id>@<step>`` (alias ``step-<step>``) and ``<run_id>`` (alias ``latest``).

    Example:
        >>> parse_ref("abc123@39")
        CheckpointRef(run_id='abc123', alias='step-39', entity=None, project=None)

    Raises:
        ReferenceSyntaxError: the text matches none of the forms.
    """
    raw = text
    text = text.strip()
    hint = ("expected entity/project/run-<id>-checkpoint:<alias>, run-<id>-checkpoint:<alias>, "
            "<run_id>@<step> or <run_id>")
    if not text:
        raise ReferenceSyntaxError(f"empty checkpoint reference; {hint}")
    if "@" in text:
        run_id, _, step = text.partition("@")
        # ASCII digits only (str.isdigit takes "²"), and short enough for int64 before int()
        if (not re.fullmatch(_ID, run_id) or not re.fullmatch(r"[0-9]{1,19}", step)
                or not is_step(int(step))):
            raise ReferenceSyntaxError(
                f"bad checkpoint reference {raw!r}: <run_id>@<step> needs a run id and a "
                f"non-negative integer step below 2**63, e.g. 1a2b3c4d@39")
        return CheckpointRef(run_id=run_id, alias=step_alias(int(step)))
    path, _, alias = text.partition(":")
    if _ and not _ALIAS_RE.fullmatch(alias):
        raise ReferenceSyntaxError(f"bad alias {alias!r} in checkpoint reference {raw!r}; {hint}")
    parts = path.split("/")
    if len(parts) > 3 or any(not p for p in parts):
        raise ReferenceSyntaxError(f"bad checkpoint reference {raw!r}; {hint}")
    *prefix, last = parts
    match = _NAME_RE.fullmatch(last)
    if match:
        run_id = match["run_id"]
    elif not prefix and not _ and re.fullmatch(_ID, last):
        run_id = last  # a bare run id
    else:
        raise ReferenceSyntaxError(
            f"bad checkpoint reference {raw!r}: {last!r} is not an artifact named "
            f"run-<id>-checkpoint; {hint}")
    entity, project = ([None] * (2 - len(prefix)) + prefix)
    return CheckpointRef(run_id=run_id, alias=alias or LATEST, entity=entity, project=project)


def checkpoint_step(obj: Any, where: str) -> int:
    """Validate a decoded ``checkpoint.json`` and return its local ``"step"``.

    Args:
        obj: the decoded JSON value.
        where: what to name in the error (the reference or file path).

    Raises:
        CheckpointError: not an object, no ``"step"``, or a step that is not a
            non-negative integer.
    """
    if not isinstance(obj, dict):
        raise CheckpointError(
            f"{CHECKPOINT_FILE} in {where} holds a JSON {type(obj).__name__}, expected an "
            f'object like {{"step": 39}}')
    if "step" not in obj:
        raise CheckpointError(
            f'{CHECKPOINT_FILE} in {where} has no "step" key (keys: {sorted(obj)[:8]}); the '
            f"contract needs the run's local step at save time")
    step = obj["step"]
    if not is_step(step):
        raise CheckpointError(
            f'{CHECKPOINT_FILE} in {where} has "step": {step!r}; expected a non-negative '
            f"integer (the run's local _step when the checkpoint was saved)")
    return step
