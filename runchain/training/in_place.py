"""Resume a run in place by W&B's rules: ``resume="must"``, a rewind, or a refusal.

Online, W&B keeps a run's rows in step order: a row logged at a step the run has already
passed is dropped. A run that crashed usually logged past its last checkpoint, so going on
in place from that checkpoint (its next row is the checkpoint's step + 1) would lose every
row up to the old last step, silently. The rule (``in_place_init``), from the run's last
step on W&B (``lastHistoryStep``) and the checkpoint's row step ``S``:

- last step ``<= S`` (or unknown, offline): ``wandb.init(id=R, resume="must")``; rows go on
  from ``S + 1``;
- past ``S``, with ``rewind=True``: ``wandb.init(resume_from=f"{R}?_step={S}")``, W&B's
  rewind, which keeps the rows up to ``S`` and archives the rest (a preview feature that a
  server may not offer; ``wandb.init`` then fails and nothing is logged);
- past ``S``, no rewind: ``ResumeError`` before ``wandb.init``, saying how to fork instead.

Offline there is no server to drop rows: the run files keep them all, and the readers take
the rows after the checkpoint as the run's new timeline (``docs/chains.md``). ``do_run.py``
(through ``resume_args``) and the framework callbacks (``integrations/marker.py``) share the
rule. It has run against stand-ins of ``wandb.Api`` only: W&B is unreachable from CI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ResumeError
from ..wandb_io.api import open_api, wandb_requests

if TYPE_CHECKING:
    from .checkpoints import Checkpoint


def in_place_init(run_id: str, row_step: int, last_step: int | None, *, rewind: bool = False,
                  fork_hint: str = "resume in a new run from the checkpoint",
                  rewind_hint: str | None = None) -> dict[str, Any]:
    """The ``wandb.init`` arguments that resume ``run_id`` in place after its row
    ``row_step``, when W&B holds rows up to ``last_step`` (None: unknown, or none).

    Example:
        >>> in_place_init("r1", 49, 49)
        {'id': 'r1', 'resume': 'must'}
        >>> in_place_init("r1", 49, 120, rewind=True)
        {'resume_from': 'r1?_step=49'}

    ``fork_hint`` and ``rewind_hint`` say how the caller forks or rewinds instead, in the
    refusal.

    Raises:
        ResumeError: W&B holds rows past ``row_step`` and no rewind was asked for.
    """
    if last_step is None or last_step <= row_step:
        return {"id": run_id, "resume": "must"}
    if rewind:
        return {"resume_from": f"{run_id}?_step={row_step}"}
    rewind_hint = rewind_hint or (f"rewind it with wandb.init(resume_from='{run_id}?_step="
                                  f"{row_step}') if your W&B server offers rewind")
    raise ResumeError(
        f"run {run_id} logged up to step {last_step} on W&B, past step {row_step} of the "
        f"checkpoint it would resume from in place; W&B drops rows logged at steps a run has "
        f"passed, so the rows it would log at steps {row_step + 1}..{last_step} would be lost. "
        f"Instead, "
        f"{fork_hint} (a fork keeps both), or {rewind_hint}")


def resume_args(checkpoint: Checkpoint | None, run_id: str | None, *, mode: str,
                rewind: bool = False, api: Any = None) -> dict[str, Any]:
    """The ``wandb.init`` arguments that place a new run: its ``id``, and when ``run_id`` is
    the checkpoint's own run (a resume in place), W&B's resume rule (``in_place_init``).
    Online it asks W&B for the run's last step, before any run is started.

    Args:
        checkpoint: what the run resumes from (``load_checkpoint``), None for a root.
        run_id: the id asked for (``--run_id``), None for a new random one.
        mode: ``"online"`` or ``"offline"`` (``resolve_mode``).
        rewind: rewind the run when W&B holds rows past the checkpoint.
        api: the ``wandb.Api`` to ask (default: a new one).

    Example:
        >>> run = wandb.init(project="demo", **resume_args(checkpoint, "r1", mode="online"))  # doctest: +SKIP

    Raises:
        ResumeError: the run logged past the checkpoint and ``rewind`` is off.
        CredentialsError, SourceError: online, W&B cannot be asked.
    """
    if checkpoint is None or run_id is None or checkpoint.run_id != run_id:
        return {"id": run_id}
    if checkpoint.state.get("step_metric") is not None:
        raise ResumeError(f"checkpoint {checkpoint.ref} counts steps on "
                          f"{checkpoint.state['step_metric']!r}, a framework's axis, not run "
                          f"{run_id}'s rows; resume it in place through the framework callback "
                          f"(docs/frameworks.md), or in a new run")
    fork = (f"resume in a new run: --checkpoint_artifact {checkpoint.run_id}@{checkpoint.step} "
            f"without --run_id")
    rewind_hint = f"pass --rewind to rewind it to step {checkpoint.step} (if your W&B server offers rewind)"
    if mode != "online":
        return in_place_init(run_id, checkpoint.step, None)
    ref = checkpoint.ref
    path = "/".join(p for p in (ref.entity, ref.project, run_id) if p)
    api = api if api is not None else open_api(f"resuming run {run_id} in place")
    with wandb_requests(f"the last step of run {path}"):
        last = api.run(path).lastHistoryStep  # -1: no rows
    return in_place_init(run_id, checkpoint.step, last if last >= 0 else None,
                         rewind=rewind, fork_hint=fork, rewind_hint=rewind_hint)
