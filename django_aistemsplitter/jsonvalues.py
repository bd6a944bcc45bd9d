"""What JSON from outside may hold before it is stored or echoed: one rule for every entry.

The REST API's bodies and ``metadata`` field and the webhook receiver's events
all end up in a ``jsonb`` column, in the admin and in answers. Parsing is not
enough for that: JSON nested thousands deep exhausts the stack of whoever walks
it later (``json.dumps``, the admin), an unpaired surrogate (``"\\ud800"``)
cannot be encoded as UTF-8, PostgreSQL's ``jsonb`` refuses the NUL character and
numbers that are not finite, and ``NaN``/``Infinity`` are not JSON at all.
:func:`json_problem` names the first such problem of a parsed value and
:func:`loads` parses with the same rules, so the API and the webhook view cannot
disagree about what is acceptable.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["MAX_JSON_DEPTH", "json_problem", "loads"]

#: Deepest nesting of arrays and objects accepted (the contract's events are 4
#: levels deep); an API body may nest one level more (the request object around
#: ``metadata``).
MAX_JSON_DEPTH = 32


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _has_lone_surrogate(text: str) -> bool:
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def json_problem(
    value: Any, *, storable: bool = False, depth: int = MAX_JSON_DEPTH, strings: bool = True
) -> str | None:
    """Why ``value`` (parsed JSON) is refused, or None.

    Always: arrays and objects nested more than ``depth`` levels and strings with unpaired
    surrogates (they cannot be encoded as UTF-8, so neither stored nor sent back).
    ``strings=False`` skips the strings (a caller that cleans the fields it picks
    out one by one needs only the nesting bounded).
    With ``storable`` also what PostgreSQL's ``jsonb`` refuses: the NUL character
    (``\\u0000``) and numbers that are not finite. The walk is iterative, so the
    depth of ``value`` cannot exhaust the stack.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (Mapping, list)):
            if level >= depth:
                return f"nested deeper than {depth} levels"
            if isinstance(item, Mapping):
                stack.extend((key, level) for key in item)
                stack.extend((child, level + 1) for child in item.values())
            else:
                stack.extend((child, level + 1) for child in item)
        elif isinstance(item, str) and strings:
            if _has_lone_surrogate(item):
                return "a string holds an unpaired surrogate"
            if storable and "\x00" in item:
                return "a string holds the NUL character (\\u0000)"
        elif storable and isinstance(item, float) and not math.isfinite(item):
            return "a number is out of range"
    return None


def loads(text: str | bytes, *, depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse JSON text; ``ValueError`` with a short reason for anything refused.

    ``NaN`` and ``Infinity`` are not JSON; nesting is bounded by Python's
    recursion limit while parsing and by ``depth`` levels after.
    """
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError(f"nested deeper than {depth} levels") from None
    problem = json_problem(value, depth=depth)
    if problem is not None:
        raise ValueError(problem)
    return value
