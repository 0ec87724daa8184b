"""Content negotiation: raw image bytes or JSON, and which image format, from ``Accept``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._exceptions import InvalidRequestError

__all__ = ["negotiate_format", "prefers_image", "requested_format"]

#: The image types the server can answer, and their ``output_format``.
_FORMAT_OF_MIME = {"image/jpeg": "jpeg", "image/png": "png", "image/webp": "webp"}
_MIME_OF_FORMAT = {fmt: mime for mime, fmt in _FORMAT_OF_MIME.items()}


def _ranges(accept: str) -> list[tuple[str, str, float]]:
    out: list[tuple[str, str, float]] = []
    for part in accept.split(","):
        pieces = [p.strip() for p in part.split(";")]
        media = pieces[0].lower()
        if "/" not in media:
            continue
        kind, _, sub = media.partition("/")
        q = 1.0
        for param in pieces[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = min(1.0, max(0.0, float(value)))
                except ValueError:
                    q = 0.0
        out.append((kind.strip(), sub.strip(), q))
    return out


def _match(ranges: list[tuple[str, str, float]], mime: str) -> tuple[float, int]:
    """(q, specificity) of the most specific range matching ``mime``; (0, -1) when none does."""
    kind, _, sub = mime.partition("/")
    best: tuple[float, int] = (0.0, -1)
    for r_kind, r_sub, q in ranges:
        if r_kind == kind and r_sub == sub:
            specificity = 2
        elif r_kind == kind and r_sub == "*":
            specificity = 1
        elif r_kind == "*" and r_sub == "*":
            specificity = 0
        else:
            continue
        if specificity > best[1]:
            best = (q, specificity)
    return best


def prefers_image(accept: str | None, image_mime: str) -> bool:
    """Whether ``Accept`` prefers ``image_mime`` (e.g. ``"image/jpeg"``) to JSON.

    The image wins when its quality value is higher than JSON's, or equal and matched by a
    more specific range (``image/jpeg, */*`` or ``image/*, */*`` pick the image; ``*/*``,
    a missing header, or ``image/*, application/json`` pick JSON). An ``Accept`` naming only
    another image type (``image/png`` for a JPEG) falls back to JSON.

    Args:
        accept: The ``Accept`` header, or ``None``.
        image_mime: The MIME type of the image that would be sent.

    Returns:
        ``True`` to send raw image bytes, ``False`` for JSON.

    Example:
        >>> prefers_image("image/*", "image/jpeg"), prefers_image("*/*", "image/jpeg")
        (True, False)
    """
    if not accept:
        return False
    ranges = _ranges(accept)
    image_q, image_spec = _match(ranges, image_mime)
    json_q, json_spec = _match(ranges, "application/json")
    if image_q <= 0.0:
        return False
    return image_q > json_q or (image_q == json_q and image_spec > json_spec)


def requested_format(accept: str | None) -> str | None:
    """The ``output_format`` that ``Accept`` asks for by name, if it prefers an image to JSON.

    Only an exact image type counts (``image/png``; ``image/*`` leaves the format open). Of
    several, the highest quality wins, then the first listed.

    Args:
        accept: The ``Accept`` header, or ``None``.

    Returns:
        ``"png"``, ``"jpeg"`` or ``"webp"``, or ``None``.

    Example:
        >>> requested_format("image/png"), requested_format("image/*"), requested_format(None)
        ('png', None, None)
    """
    if not accept:
        return None
    best: tuple[float, str] | None = None
    for kind, sub, q in _ranges(accept):
        fmt = _FORMAT_OF_MIME.get(f"{kind}/{sub}")
        if fmt is not None and q > 0 and (best is None or q > best[0]):
            best = (q, fmt)
    if best is None or not prefers_image(accept, _MIME_OF_FORMAT[best[1]]):
        return None
    return best[1]


def negotiate_format(body: Mapping[str, Any], accept: str | None) -> dict[str, Any]:
    """The request body with ``output_format`` chosen by ``Accept`` where the body leaves it open.

    A body without ``output_format`` gets the format ``Accept`` names (``Accept: image/png``
    answers a PNG). A body with one keeps it; when neither that format nor JSON is acceptable,
    the request is refused with 406 naming both, before any work is done.

    Args:
        body: The JSON body of ``POST /v1/generate``.
        accept: The ``Accept`` header, or ``None``.

    Returns:
        The body to validate (a copy when a format was filled in).

    Raises:
        InvalidRequestError: HTTP 406, ``field="output_format"``: ``Accept`` and the body's
            ``output_format`` cannot both be honoured.

    Example:
        >>> negotiate_format({"prompt": "a cat"}, "image/png")
        {'prompt': 'a cat', 'output_format': 'png'}
    """
    wanted = requested_format(accept)
    if wanted is None:
        return dict(body)
    if "output_format" not in body:
        return {**body, "output_format": wanted}
    given = body["output_format"]
    fmt = given.strip().lower() if isinstance(given, str) else given
    fmt = "jpeg" if fmt == "jpg" else fmt
    if fmt == wanted or not isinstance(fmt, str) or fmt not in _MIME_OF_FORMAT:
        return dict(body)  # the same format, or one validation will refuse with its range
    ranges = _ranges(accept or "")
    if _match(ranges, _MIME_OF_FORMAT[fmt])[0] > 0 or _match(ranges, "application/json")[0] > 0:
        return dict(body)  # the answer (that image, or JSON) is still acceptable
    raise InvalidRequestError(
        f"Accept asks for {_MIME_OF_FORMAT[wanted]} but output_format is {given!r} "
        f"({_MIME_OF_FORMAT[fmt]}): send one or the other, or accept {_MIME_OF_FORMAT[fmt]} "
        "or application/json too.",
        field="output_format",
        status_code=406,
    )
