"""A run in several files: resumed in place, rewound, or restarted. Which rows are whose.

wandb writes a new ``run-<id>.wandb`` file (a new folder) each time a run is resumed in
place. Its rows and checkpoints form *timelines* (``docs/chains.md``, "Timelines"):

- **A rewind** (``wandb.init(resume_from=f"{id}?_step={s}")``, its run record's branch
  point names the run itself) continues from step ``s``: from ``s + 1`` on, its rows
  replace the earlier files' rows. So does **runchain's own resume in place**
  (``do_run.py --run_id R --resume-from R@s``), whose first row is ``s + 1``.
- **wandb 0.19 and older** record a fork's or rewind's branch point ``s`` in the run's
  config only, and offline the new file's ``_step`` starts at 0: its steps are shifted by
  ``s + 1``, where W&B (and newer SDKs) number them.
- **A restarted counter**: offline, wandb has no server to say where the run stopped, so a
  plain ``wandb.init(id=R, resume="allow")`` starts ``_step`` at 0 again. A later file
  whose first row is 0, with no branch point, replaces nothing: its rows are placed after
  the earlier ones, as W&B would number them, and a note says so.
- **Timeline k** is the run as it stood when file k was its newest: files 0..k, each cut
  where a later one of them took over. The run's own rows are its newest timeline. A
  checkpoint saved in file k at a step a later file took over belongs to timeline k: a
  chain through it gets exactly that timeline's rows, never a mix.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from ..core.contract import LOCAL_STEP, as_step
from .record_log import RunFile


@dataclasses.dataclass(frozen=True)
class FileAxis:
    """Where one file's rows go on its run's axis."""

    shift: int  # added to the file's own _step (non-zero only for a restarted counter)
    start: float  # from this (shifted) step on, the file replaces earlier files' rows; inf: none


def file_axes(run_id: str, files: Sequence[RunFile]) -> tuple[list[FileAxis], list[str]]:
    """Each file's ``FileAxis``, oldest first, and a note per restarted counter."""
    axes: list[FileAxis] = []
    notes: list[str] = []
    for k, file in enumerate(files):
        branch = as_step(file.branch_point[1]) if file.branch_point else None
        # wandb <= 0.19, offline: the branch point is in the config and _step restarts at 0
        shift = branch + 1 if branch is not None and file.first_step == 0 else 0
        rewound_to = branch if file.branch_point and file.branch_point[0] == run_id else None
        end = last_step(files[:k], axes)
        if rewound_to is not None:
            axis = FileAxis(shift, rewound_to + 1)
        elif k == 0 and shift:  # a fork by an old SDK: its steps go on from the branch point
            axis = FileAxis(shift, math.inf)
        elif k > 0 and file.first_step == 0 and end is not None:
            axis = FileAxis(end + 1, math.inf)
            notes.append(f"its file {file.path} restarts _step at 0 (resumed in place offline, "
                         f"where no server continues the counter); its rows are placed after "
                         f"step {end}, at {end + 1}-{end + 1 + file.last_step}, as W&B would "
                         f"number them")
        else:
            axis = FileAxis(0, math.inf if file.first_step is None or k == 0 else file.first_step)
        axes.append(axis)
    return axes, notes


def cuts(axes: Sequence[FileAxis]) -> list[float]:
    """Per file of one timeline: its rows at or after this (shifted) step are replaced."""
    cut, out = math.inf, []
    for axis in reversed(axes):
        out.append(cut)
        cut = min(cut, axis.start)
    return out[::-1]


def last_step(files: Sequence[RunFile], axes: Sequence[FileAxis]) -> int | None:
    """The last step the timeline of these files keeps (inclusive), None if it has no rows."""
    kept = [min(f.last_step + a.shift, cut - 1) for f, a, cut in zip(files, axes, cuts(axes))
            if f.first_step is not None and f.first_step + a.shift < cut]
    return int(max(kept)) if kept else None


def first_step(files: Sequence[RunFile], axes: Sequence[FileAxis]) -> int | None:
    """The first step the timeline of these files keeps, None if it has no rows."""
    kept = [f.first_step + a.shift for f, a, cut in zip(files, axes, cuts(axes))
            if f.first_step is not None and f.first_step + a.shift < cut]
    return int(min(kept)) if kept else None


def abandoned_in(step: int, file: int, axes: Sequence[FileAxis]) -> bool:
    """Whether a later file took over the step that file ``file`` saved a checkpoint at."""
    return any(axis.start <= step for axis in axes[file + 1:])


Part = Callable[[], Mapping[str, np.ndarray]]  # opens one file's history columns


class RunHistory(Mapping[str, np.ndarray]):
    """One timeline's history columns across its files, ``_step`` shifted as ``FileAxis``
    says; a column a file lacks is NaN there; rows a later file replaced are left out.

    Cached columns are memory-mapped, so only the slices used are read.
    """

    def __init__(self, parts: Sequence[Part], axes: Sequence[FileAxis]):
        self._parts = [open_part() for open_part in parts]
        self._shifts = [axis.shift for axis in axes]
        names = {LOCAL_STEP: None}
        for part in self._parts:
            names.update(dict.fromkeys(part))
        self._names = names  # ordered, and a lookup is O(1)
        self._keep: list[np.ndarray | None] = [None] * len(self._parts)
        if len(self._parts) > 1:
            steps = [np.asarray(part[LOCAL_STEP]) + shift
                     for part, shift in zip(self._parts, self._shifts)]
            self._keep = [None if cut == math.inf else s < cut for s, cut in zip(steps, cuts(axes))]

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._names:
            raise KeyError(name)
        if len(self._parts) == 1:  # one file, nothing replaced: its column, one copy at most
            part, shift = self._parts[0], self._shifts[0]
            if name == LOCAL_STEP:
                steps = np.asarray(part[name]).astype(np.int64)
                return steps + shift if shift else steps
            return part[name] if name in part else np.full(len(part[LOCAL_STEP]), np.nan)
        pieces = [part[name] if name in part else np.full(len(part[LOCAL_STEP]), np.nan)
                  for part in self._parts]
        if name == LOCAL_STEP:
            pieces = [np.asarray(p, np.int64) + shift for p, shift in zip(pieces, self._shifts)]
        pieces = [p if keep is None else p[keep] for p, keep in zip(pieces, self._keep)]
        column = pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
        return column.astype(np.int64) if name == LOCAL_STEP else column

    def __contains__(self, name: object) -> bool:  # without building the column
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)
