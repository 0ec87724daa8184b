"""Choosing between raw image bytes and JSON from the ``Accept`` header."""

from __future__ import annotations

__all__ = ["prefers_image"]


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
