"""schemathesis hooks for fuzzing a live tiny-model ``jaguar serve`` (``SCHEMATHESIS_HOOKS``).

Used by ``tests/server/test_schemathesis.py`` and by the longer documented run in
``docs/server.md``. They change only what the schema cannot say:

- sizes: a valid width, height or ``size`` is made small (at most 128 px; 64 px where the
  body leaves it to the 1024 px default), a valid image count at most 2 and a valid step
  count at most 2, so each generation takes milliseconds on CPU; an invalid value is left
  alone, so negative cases stay negative (cases that leave out a required parameter, the
  bearer token, are not touched at all: schemathesis would re-judge an edited one);
- ``Idempotency-Key``: a valid key gets a unique suffix (an invalid one is left alone), as a
  key reused with another body is refused by design (422 ``idempotency_key_reused``, tested
  in test_idempotency.py) and generated keys collide all the time;
- ``webhook_url``: a string is dropped, because whether a URL is accepted depends on DNS and
  the operator's allow-list (tested in tests/jobs/test_webhook_safety.py), not on the schema.
"""

from __future__ import annotations

import itertools
import re
import uuid
from typing import Any

import schemathesis

_SIZE_RE = re.compile(r"\s*(\d{1,5})\s*[xX×]\s*(\d{1,5})\s*")
_KEY_RE = re.compile(r"[\x21-\x7e]{1,255}")
_SMALL = 128
_serial = itertools.count()
_RUN = uuid.uuid4().hex[:8]  # unique per run, so repeated runs against one server never collide


def _is_int(value: Any) -> bool:
    """An integer as JSON Schema counts them (``64.0`` is one)."""
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, int) and not isinstance(value, bool)


def _small_side(value: Any) -> Any:
    if _is_int(value) and 64 <= value <= 2048 and value % 16 == 0:
        return min(int(value), _SMALL)
    return value


def _at_most(value: Any, low: int, high: int, cap: int) -> Any:
    return min(int(value), cap) if _is_int(value) and low <= value <= high else value


def _small_size(value: Any) -> Any:
    match = _SIZE_RE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        return value
    sides = [int(match.group(1)), int(match.group(2))]
    if all(64 <= s <= 2048 and s % 16 == 0 for s in sides):
        return "x".join(str(min(s, _SMALL)) for s in sides)
    return value


def shrink_body(body: Any) -> None:
    """Make a generated body cheap to run (in place), keeping valid values valid: small
    sizes where they are given and where they are left to the (1024 px) default."""
    if not isinstance(body, dict):
        return
    for side in ("width", "height"):
        body[side] = _small_side(body[side]) if side in body else 64
    for name, low, high, cap in (("num_images", 1, 4, 2), ("n", 1, 4, 2), ("steps", 1, 50, 2)):
        if name in body:
            body[name] = _at_most(body[name], low, high, cap)
    if "size" in body and body["size"] is not None:
        body["size"] = _small_size(body["size"])
    if isinstance(body.get("webhook_url"), str):
        del body["webhook_url"]


def shrink_openai_body(body: Any) -> None:
    """The OpenAI route's form: ``size`` instead of width and height."""
    if not isinstance(body, dict):
        return
    if body.get("size") is None:
        body["size"] = "64x64"
    else:
        body["size"] = _small_size(body["size"])
    if "n" in body:
        body["n"] = _at_most(body["n"], 1, 4, 2)


def _missing_parameter(meta: Any) -> bool:
    """A coverage case that leaves out a required parameter (the bearer token): any edit
    would make schemathesis re-judge it valid, since the token is not part of the case."""
    scenario = getattr(getattr(meta.phase, "data", None), "scenario", None)
    return str(getattr(scenario, "value", scenario)) == "missing_parameter"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Shrink the body and give a valid Idempotency-Key a unique suffix."""
    meta = getattr(case, "meta", None)
    if meta is None or _missing_parameter(meta):
        return
    if case.path == "/v1/images/generations":
        shrink_openai_body(case.body)
    else:
        shrink_body(case.body)
    headers = case.headers or {}
    for name in list(headers):
        value = headers[name]
        valid = isinstance(value, str) and _KEY_RE.fullmatch(value)
        if name.lower() == "idempotency-key" and valid:
            suffix = f".{_RUN}{next(_serial)}"
            headers[name] = value[: 255 - len(suffix)] + suffix  # still 1-255 characters
