"""Read a webhook body into a :class:`WebhookEvent`: pure, no HTTP client, no secrets.

Call it after :func:`~django_aistemsplitter.client.verify_signature` has accepted
the raw bytes (``AiStemSplitter.verify_webhook`` does both). The body is treated
as hostile even when signed, because what it holds is stored and acted on:
anything that is not a readable event raises :class:`MalformedWebhookError` and
nothing else, including JSON nested deeply enough to exhaust the recursion limit,
``NaN``/``Infinity`` (not JSON, though Python's parser accepts them), numbers too
large for a float, NUL characters and lone surrogates in strings (PostgreSQL
refuses both), and a ``created`` that is not a unix time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from django_aistemsplitter.client.exceptions import MalformedWebhookError
from django_aistemsplitter.client.types import WebhookEvent

__all__ = ["find_header", "parse_event"]

#: Unix seconds below this are plausible (the year 5138); above, a number is junk.
_MAX_CREATED = 10**11


def _refuse_constant(name: str) -> Any:
    raise MalformedWebhookError(f"webhook body contains {name}, which is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise MalformedWebhookError("webhook body contains a number too large for a float")
    return value


def _check_strings(payload: Any) -> None:
    """Refuse NUL characters and lone surrogates anywhere (keys too), without recursion."""
    stack = [payload]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                raise MalformedWebhookError("webhook body contains a NUL character")
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise MalformedWebhookError("webhook body contains a lone surrogate") from None


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except MalformedWebhookError:
        raise
    except RecursionError:
        raise MalformedWebhookError("webhook body is nested too deeply") from None
    except ValueError:  # JSONDecodeError, UnicodeDecodeError, over-long integers
        raise MalformedWebhookError("webhook body is not JSON") from None


def _optional_str(payload: Mapping[str, Any], key: str) -> None:
    value = payload.get(key)
    if value is not None and not isinstance(value, str):
        raise MalformedWebhookError(f"webhook event's {key!r} is not a string")


def parse_event(body: bytes | str, *, signed_at: int | None = None) -> WebhookEvent:
    """The event in ``body`` (either of the contract's shapes), or :class:`MalformedWebhookError`.

    ``signed_at`` (the signature's timestamp) stands in for ``created`` when the
    event carries none, as thin events do.
    """
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    payload = _decode(raw)
    if not isinstance(payload, Mapping) or not isinstance(payload.get("data"), Mapping):
        raise MalformedWebhookError("webhook body is not an event")
    _check_strings(payload)
    for key in ("id", "type", "event"):
        _optional_str(payload, key)
    if not (payload.get("type") or payload.get("event")):
        raise MalformedWebhookError("webhook event has no type")
    data = payload["data"]
    if not (isinstance(data.get("id"), str) and data["id"]) or not (
        isinstance(data.get("status"), str) and data["status"]
    ):
        raise MalformedWebhookError("webhook event has no split id or status")
    created = payload.get("created")
    if created is not None and (
        isinstance(created, bool)
        or not isinstance(created, (int, float))
        or not 0 <= created < _MAX_CREATED
    ):
        raise MalformedWebhookError("webhook event's 'created' is not a unix time")
    return WebhookEvent.from_api(payload, signed_at=signed_at)


def find_header(headers: Mapping[str, Any], name: str) -> str | None:
    """Case-insensitive lookup that also understands WSGI ``META`` keys (``HTTP_X_Y``)."""
    wanted = name.lower().replace("_", "-")
    for key, value in headers.items():
        normal = str(key).lower().replace("_", "-")
        if normal.startswith("http-"):
            normal = normal[5:]
        if normal == wanted:
            return str(value)
    return None
