"""Check a checkpoint's ``checkpoint.json`` against what a training script reads from it.

A checkpoint is someone else's data: a run of another script, an older version of this
one, or a file edited by hand. ``check_state`` turns every key a script needs into one
``CheckpointError`` line that names the key and the type it expects, before any run
starts, instead of a traceback halfway through restoring a model.
"""

from __future__ import annotations

from typing import Any, Mapping

from ..errors import CheckpointError

INT_LIMIT = 2**63  # a JSON integer a script can use: within int64, as a step is

_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
          dict: "an object", list: "a list"}


def _shown(value: Any) -> str:
    """A short, safe rendering of a JSON value for an error message."""
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    text = repr(value) if isinstance(value, (int, float, str, bool)) or value is None \
        else f"{'an object' if isinstance(value, dict) else 'a list'} of {len(value)}"
    return text if len(text) <= 40 else text[:39] + "\u2026"


def _fits(value: Any, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) \
            and (isinstance(value, float) or -INT_LIMIT <= value < INT_LIMIT)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool) \
            and -INT_LIMIT <= value < INT_LIMIT
    return isinstance(value, kind)


def _expected(spec: Any) -> str:
    if isinstance(spec, Mapping):
        return "an object"
    if isinstance(spec, list):
        return f"a list of {_expected(spec[0]).split(' ', 1)[1]}s"
    return _NAMES[spec] + (" within int64" if spec is int else "")


def _check(value: Any, spec: Any, key: str, fail) -> None:
    if isinstance(spec, Mapping):
        if not isinstance(value, dict):
            fail(key, value)
        for name, inner in spec.items():
            if name not in value:
                fail(f"{key}.{name}" if key else name, None, missing=_expected(inner))
            _check(value[name], inner, f"{key}.{name}" if key else name, fail)
    elif isinstance(spec, list):
        if not isinstance(value, list):
            fail(key, value, expected=_expected(spec))
        for i, item in enumerate(value):
            if not _fits(item, spec[0]):
                fail(f"{key}[{i}]", item, expected=_expected(spec[0]))
    elif not _fits(value, spec):
        fail(key, value, expected=_expected(spec))


def check_state(state: Mapping[str, Any] | Any, spec: Mapping[str, Any], hint: str = "") -> None:
    """Check that a checkpoint's state holds each key of ``spec`` with the type it names.

    Args:
        state: a ``Checkpoint`` (its ``state`` is checked and its reference named), or the
            decoded ``checkpoint.json`` itself.
        spec: key -> ``int`` (within int64; not true/false), ``float`` (any number),
            ``str``, ``bool``, ``dict``, ``list``, ``[type]`` (a list of those), or a nested
            spec for an object's own keys.
        hint: said after the problem, e.g. which script's checkpoints fit.

    Example:
        >>> check_state({"step": 9, "iter_num": "9"}, {"iter_num": int})
        Traceback (most recent call last):
        ...
        runchain.errors.CheckpointError: checkpoint.json has "iter_num": '9', expected an integer within int64

    Raises:
        CheckpointError: a key is missing or holds another type; the message names it.
    """
    where = f" of {state.ref}" if hasattr(state, "ref") else ""
    values = state.state if hasattr(state, "ref") else state

    def fail(key: str, value: Any, expected: str | None = None, missing: str | None = None):
        problem = (f'has no "{key}" key ({missing} expected)' if missing
                   else f'has "{key}": {_shown(value)}, expected {expected or "an object"}')
        raise CheckpointError(f"checkpoint.json{where} {problem}" + (f"; {hint}" if hint else ""))

    missing = [f'"{key}"' for key in spec if key not in values]
    if len(missing) > 1:  # e.g. another script's checkpoint: name every key it lacks at once
        raise CheckpointError(f"checkpoint.json{where} has no {', '.join(missing)} keys"
                              + (f"; {hint}" if hint else ""))
    _check(values, spec, "", fail)
