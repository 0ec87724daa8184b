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
- input images: a schema can say "a string" or "a file" but not "a decodable PNG of the same
  size as the image", so in a positive body ``image`` and ``mask`` become real small images
  (base64 in JSON, bytes in a form), and ``strength``/``mask`` go when there is no ``image``
  (the schema's ``dependentRequired``, which the coverage phase does not read); bad images are
  tested in tests/core/test_inputs.py and tests/server/;
- ``loras``: in a positive body the list is emptied; whether an adapter exists (and fits the
  model) is not a schema matter, and the stateful phase does not read the items' ``oneOf``
  (repo or path); adapters are tested in tests/engine/test_engine_lora.py and
  tests/server/test_lora_http.py;
- ``webhook_url``: a schema-valid string (a URI of at most 2048 characters) becomes
  :data:`WEBHOOK_URL`, which the fuzzed server allow-lists (deliveries to it fail quietly in
  the background), because whether a URL is accepted depends on DNS and
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


def shrink_body(body: Any, *, as_base64: bool = True) -> None:
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
    url = body.get("webhook_url")
    if isinstance(url, str) and len(url) <= 2048 and _URI_RE.fullmatch(url):
        body["webhook_url"] = WEBHOOK_URL
    real_images(body, as_base64=as_base64)
    if isinstance(body.get("loras"), list):
        body["loras"] = []


#: The webhook every positive case gets (the fuzzed server allow-lists 127.0.0.1).
WEBHOOK_URL = "http://127.0.0.1:9/hook"
_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:\S*")


def _png(width: int, height: int, colour: int) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (colour, colour, colour)).save(buffer, format="PNG")
    return buffer.getvalue()


def real_images(body: dict[str, Any], *, as_base64: bool) -> None:
    """A positive body's images made decodable (see the module docstring)."""
    import base64

    def encode(data: bytes) -> Any:
        if as_base64:
            return base64.b64encode(data).decode("ascii")
        # a form file as schemathesis itself writes one (a str, for its schema checks)
        from schemathesis.transport.serialization import Binary

        return Binary(data)

    if body.get("image") is None:
        body.pop("strength", None)
        body.pop("mask", None)
        return
    body["image"] = encode(_png(64, 64, 120))
    if body.get("mask") is not None:
        body["mask"] = encode(_png(64, 64, 255))


def shrink_openai_body(body: Any, *, nullable: bool = True) -> None:
    """The OpenAI routes' form: ``size`` instead of width and height. A null ``size`` means
    the default on the JSON route; on the multipart one (``nullable=False``) no field may be
    null, so a null is a negative case and left alone."""
    if not isinstance(body, dict):
        return
    if "size" not in body or (nullable and body["size"] is None):
        body["size"] = "64x64"
    else:
        body["size"] = _small_size(body["size"])
    if "n" in body:
        body["n"] = _at_most(body["n"], 1, 4, 2)
    if not nullable and "image" in body:  # the edits form: files as bytes
        real_images(body, as_base64=False)


def _missing_parameter(meta: Any) -> bool:
    """A coverage case that leaves out a required parameter (the bearer token): any edit
    would make schemathesis re-judge it valid, since the token is not part of the case."""
    scenario = getattr(getattr(meta.phase, "data", None), "scenario", None)
    return str(getattr(scenario, "value", scenario)) == "missing_parameter"


def _negative_body(meta: Any) -> bool:
    """A case whose body is meant to be refused: never edited (an edit could make it valid,
    and the server refuses it before any generation anyway)."""
    components = getattr(meta, "components", None) or {}
    for location, info in dict(components).items():
        if str(getattr(location, "value", location)) == "body":
            mode = getattr(info, "mode", None)
            return str(getattr(mode, "value", mode)) == "negative"
    return False


@schemathesis.hook
def before_init_operation(context: Any, operation: Any) -> None:
    """Fuzz JSON bodies only: a multipart body carries image files, which must decode (no
    schema says so), and schemathesis re-judges an edited form body. The multipart forms are
    tested by tests/server/test_img2img_http.py (JSON, multipart, the OpenAI client's edits);
    the multipart-only ``/v1/images/edits`` is left out of the run (``--exclude-path``)."""
    body = getattr(operation, "body", None)
    items = getattr(body, "items", None)
    if isinstance(items, list):
        kept = [i for i in items if not str(getattr(i, "media_type", "")).startswith("multipart")]
        if kept:
            body.items = kept


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    """Shrink the body and give a valid Idempotency-Key a unique suffix."""
    meta = getattr(case, "meta", None)
    if meta is None or _missing_parameter(meta):
        return
    if _negative_body(meta):
        pass
    elif case.path == "/v1/images/generations":
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
