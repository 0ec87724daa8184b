"""Signed webhooks: how a jaguar server signs a job's result, and how a receiver verifies it.

The server posts JSON to the job's ``webhook_url`` with three headers:

- ``Jaguar-Webhook-Id``: a unique id per delivery (deduplicate on it),
- ``Jaguar-Webhook-Timestamp``: Unix seconds when it was signed,
- ``Jaguar-Webhook-Signature``: ``v1=<hex>``, the HMAC-SHA256 of ``timestamp + "." + body``
  keyed with the shared secret (``jaguar serve --webhook-secret`` / ``JAGUAR_WEBHOOK_SECRET``).

Example:
    >>> body = b'{"type": "job.succeeded"}'
    >>> headers = sign_headers(body, "s3cret", webhook_id="wh_1", timestamp=1_700_000_000)
    >>> verify(body, headers, "s3cret", now=1_700_000_010)
    {'type': 'job.succeeded'}
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

from . import _constants as C
from ._exceptions import WebhookVerificationError

__all__ = [
    "MAX_WEBHOOK_URL_CHARS",
    "compute_signature",
    "sign_headers",
    "split_webhook_url",
    "verify",
]

#: Longest ``webhook_url`` accepted.
MAX_WEBHOOK_URL_CHARS = 2048
_URL_CHARS = re.compile(r"[\x21-\x7e]+")


def split_webhook_url(value: Any) -> SplitResult:
    """Check a ``webhook_url``'s form (not where it points) and split it.

    The form a server and a client both check before anything is sent: a string of at most
    2048 printable ASCII characters (no spaces or control characters; percent-encode others,
    write international host names in punycode), an absolute ``http`` or ``https`` URL with a
    host and a valid port, and no credentials (``user:pass@``), which would be sent to the
    receiver. A jaguar server then also refuses hosts that resolve to internal addresses.

    Args:
        value: The ``webhook_url`` as received.

    Returns:
        The split URL (``hostname`` lowercased, without brackets).

    Raises:
        ValueError: What is wrong, starting with ``webhook_url:``.

    Example:
        >>> split_webhook_url("https://hooks.example.com/jaguar").hostname
        'hooks.example.com'
    """
    if not isinstance(value, str):
        raise ValueError(f"webhook_url: must be a URL string (got a {type(value).__name__})")
    if len(value) > MAX_WEBHOOK_URL_CHARS:
        raise ValueError(f"webhook_url: at most {MAX_WEBHOOK_URL_CHARS} characters")
    if not _URL_CHARS.fullmatch(value):
        raise ValueError(
            "webhook_url: must be printable ASCII without spaces or control characters "
            "(percent-encode the rest; international host names in punycode)"
        )
    shown = value[:80]
    try:
        parts = urlsplit(value)
        port = parts.port  # raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise ValueError(f"webhook_url: not a valid URL ({exc}; got {shown!r})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            f"webhook_url: must be an absolute http(s) URL with a host (got {shown!r})"
        )
    if "@" in parts.netloc:
        raise ValueError(
            "webhook_url: must not carry credentials (user:password@); authenticate the "
            "webhook with its signature instead"
        )
    if port == 0:
        raise ValueError(f"webhook_url: port 0 is not a valid port (got {shown!r})")
    return parts


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def compute_signature(body: bytes | str, secret: str, timestamp: int) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}." + body`` keyed with ``secret``.

    Args:
        body: The exact request body.
        secret: The shared webhook secret.
        timestamp: Unix seconds, as sent in ``Jaguar-Webhook-Timestamp``.

    Returns:
        The lowercase hex digest (without the ``v1=`` prefix).

    Example:
        >>> len(compute_signature(b"{}", "k", 1))
        64
    """
    message = f"{timestamp}.".encode() + _as_bytes(body)
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def sign_headers(
    body: bytes | str,
    secret: str,
    *,
    webhook_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """The headers that sign one delivery.

    Args:
        body: The exact body that will be sent.
        secret: The shared webhook secret.
        webhook_id: The delivery id; a fresh ``wh_...`` when omitted.
        timestamp: Unix seconds; now when omitted.

    Returns:
        ``Jaguar-Webhook-Id``, ``Jaguar-Webhook-Timestamp`` and ``Jaguar-Webhook-Signature``.

    Example:
        >>> sorted(sign_headers(b"{}", "k"))[0]
        'Jaguar-Webhook-Id'
    """
    stamp = int(time.time()) if timestamp is None else int(timestamp)
    return {
        C.HEADER_WEBHOOK_ID: webhook_id or f"wh_{uuid.uuid4().hex}",
        C.HEADER_WEBHOOK_TIMESTAMP: str(stamp),
        C.HEADER_WEBHOOK_SIGNATURE: f"v1={compute_signature(body, secret, stamp)}",
    }


def _header(headers: Mapping[str, str], name: str) -> str | None:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def verify(
    body: bytes | str,
    headers: Mapping[str, str],
    secret: str,
    *,
    tolerance_s: float = C.WEBHOOK_TOLERANCE_S,
    now: float | None = None,
) -> Any:
    """Check a webhook's signature and age, then return its parsed JSON body.

    Args:
        body: The raw request body, exactly as received (not re-serialised JSON).
        headers: The request headers (any mapping; names are matched case-insensitively).
        secret: The shared webhook secret.
        tolerance_s: The oldest (and furthest in the future) timestamp accepted, in seconds.
        now: The current Unix time, for tests.

    Returns:
        The parsed JSON body.

    Raises:
        WebhookVerificationError: A header is missing or malformed, no ``v1`` signature
            matches (a tampered body or a wrong secret), or the timestamp is outside
            ``tolerance_s`` (a possible replay).

    Example:
        >>> verify(b"{}", {}, "k")
        Traceback (most recent call last):
        ...
        jaguar_sdk._exceptions.WebhookVerificationError: Missing Jaguar-Webhook-Timestamp header. (HTTP 400)
    """  # noqa: E501
    if not secret:
        raise WebhookVerificationError("No webhook secret given to verify with.")
    raw_stamp = _header(headers, C.HEADER_WEBHOOK_TIMESTAMP)
    if raw_stamp is None:
        raise WebhookVerificationError(f"Missing {C.HEADER_WEBHOOK_TIMESTAMP} header.")
    raw_signature = _header(headers, C.HEADER_WEBHOOK_SIGNATURE)
    if raw_signature is None:
        raise WebhookVerificationError(f"Missing {C.HEADER_WEBHOOK_SIGNATURE} header.")
    try:
        stamp = int(raw_stamp.strip())
    except ValueError:
        raise WebhookVerificationError(
            f"Malformed {C.HEADER_WEBHOOK_TIMESTAMP} header {raw_stamp!r}: not Unix seconds."
        ) from None
    current = time.time() if now is None else now
    if abs(current - stamp) > tolerance_s:
        raise WebhookVerificationError(
            f"Webhook timestamp {stamp} is {abs(current - stamp):.0f}s away from now (tolerance "
            f"{tolerance_s:g}s): refusing a possible replay. Check the receiver's clock."
        )
    expected = compute_signature(body, secret, stamp)
    candidates = [
        part.strip()[3:]
        for part in raw_signature.replace(" ", ",").split(",")
        if part.strip().startswith("v1=")
    ]
    if not any(hmac.compare_digest(expected, given) for given in candidates):
        raise WebhookVerificationError(
            "Webhook signature mismatch: the body was altered or the secret is wrong."
        )
    try:
        return json.loads(_as_bytes(body))
    except ValueError:
        raise WebhookVerificationError("The webhook body is not JSON.") from None
