"""Following Modal's "result URL" redirect: GET it, never POST again.

Modal web endpoints answer a request that is still running after 150 s with HTTP 303 to "the
original URL with a special query parameter linking it to that request"; the result URL "can be
reloaded without triggering a new request. It will block until the request completes" (Modal
docs, guide/webhook-timeouts). Re-sending the POST instead would start a second generation. So
the HTTP transport follows a 303 itself: a GET of the ``Location`` on the same origin, with the
same headers (minus the body's), each hop bounded by what is left of the call's time.
"""

from __future__ import annotations

import httpx

from .._exceptions import JaguarError, JaguarTimeoutError
from ._base import Call

__all__ = ["MAX_RESULT_REDIRECTS", "result_request"]

#: Hops followed at most (Modal redirects every 150 s: 100 hops is over 4 hours of work).
MAX_RESULT_REDIRECTS = 100

_BODY_HEADERS = frozenset({"content-type", "content-length", "transfer-encoding"})


def result_request(
    client: httpx.Client | httpx.AsyncClient,
    call: Call,
    request: httpx.Request,
    response: httpx.Response,
    hops: int,
) -> httpx.Request | None:
    """The GET of the result URL a 303 points at, or ``None`` when there is nothing to follow.

    Args:
        client: The httpx client that will send it.
        call: The call (its deadline and read timeout bound the next hop).
        request: The request that was answered.
        response: Its response.
        hops: Result redirects followed so far for this attempt.

    Returns:
        The request to send next, or ``None`` (not a 303, or no ``Location``).

    Raises:
        JaguarError: The redirect leaves the server's origin (credentials are never sent there).
        JaguarTimeoutError: The call's deadline has passed, or ``MAX_RESULT_REDIRECTS`` hops.
    """
    location = response.headers.get("location")
    if response.status_code != 303 or not location:
        return None
    target = request.url.join(location)
    here = (request.url.scheme, request.url.host, request.url.port)
    if (target.scheme, target.host, target.port) != here:
        raise JaguarError(
            f"The server redirected {call.operation} to another origin ({target.scheme}://"
            f"{target.host}); not following it with your credentials.",
            status_code=303,
            request_id=call.request_id,
        )
    left = call.remaining()
    if (left is not None and left <= 0.0) or hops >= MAX_RESULT_REDIRECTS:
        raise JaguarTimeoutError(
            f"{call.operation} was still running on the server after {hops} result redirects"
            + (" and the call's deadline passed" if left is not None and left <= 0 else "")
            + "; the generation was not started again.",
            request_id=call.request_id,
            code="deadline_exceeded" if left is not None and left <= 0 else None,
        )
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _BODY_HEADERS}
    read = call.attempt_timeout()
    connect = call.connect_timeout
    if read is not None and connect is not None:
        connect = min(connect, read)
    return client.build_request(
        "GET", target, headers=headers, timeout=httpx.Timeout(read, connect=connect)
    )
