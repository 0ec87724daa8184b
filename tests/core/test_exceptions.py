"""Error bodies map to the right JaguarError subclass, with status, request id and a hint."""

from __future__ import annotations

import pytest

import jaguar_sdk as J
from jaguar_sdk._exceptions import error_from_payload


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (422, "invalid_request", J.InvalidRequestError),
        (413, "payload_too_large", J.InvalidRequestError),
        (400, None, J.InvalidRequestError),
        (401, "unauthorized", J.AuthenticationError),
        (403, "forbidden", J.PermissionDeniedError),
        (404, None, J.NotFoundError),
        (429, None, J.RateLimitError),
        (500, "generation_failed", J.GenerationError),
        (500, None, J.ServerError),
        (502, None, J.ServerError),
        (503, "not_ready", J.NotReadyError),
        (504, None, J.JaguarTimeoutError),
        (400, "incompatible_version", J.IncompatibleVersionError),
    ],
)
def test_mapping(status, code, cls):
    body = {"code": code, "message": "boom", "field": "width", "request_id": "req_9"}
    err = error_from_payload(body, status_code=status, request_id="hdr", retry_after=2.0)
    assert type(err) is cls
    assert err.status_code == status
    assert err.request_id == "req_9"
    assert isinstance(err, J.JaguarError)
    if isinstance(err, J.InvalidRequestError):
        assert err.field == "width"
    if isinstance(err, (J.RateLimitError, J.ServerError)):
        assert err.retry_after == 2.0


def test_non_json_error_body_still_maps_and_uses_header_request_id():
    err = error_from_payload(None, status_code=502, request_id="hdr")
    assert isinstance(err, J.ServerError)
    assert err.request_id == "hdr"
    assert "HTTP 502" in str(err)


def test_messages_say_what_to_do():
    err = error_from_payload({"message": "bad token"}, status_code=401)
    assert "JAGUAR_API_KEY" in err.message


def test_builtin_compat():
    assert issubclass(J.JaguarTimeoutError, TimeoutError)
    assert issubclass(J.JaguarConnectionError, ConnectionError)
    assert issubclass(J.InvalidRequestError, ValueError)


def test_payload_round_trip():
    err = J.InvalidRequestError("width: bad", field="width", request_id="r1")
    back = error_from_payload(err.to_payload(), status_code=422)
    assert isinstance(back, J.InvalidRequestError)
    assert (back.field, back.request_id, back.message.startswith("width: bad")) == (
        "width",
        "r1",
        True,
    )


def test_errors_group_by_kind_connection_status_client_side() -> None:
    from jaguar_sdk import (
        APIStatusError,
        ClientSideError,
        ConfigurationError,
        InvalidRequestError,
        JaguarConnectionError,
        JaguarTimeoutError,
    )

    for status in (401, 403, 404, 429, 500, 503):
        err = error_from_payload({"message": "x"}, status_code=status)
        assert isinstance(err, APIStatusError), status
        assert not isinstance(err, (JaguarConnectionError, ClientSideError)), status
    timeout = JaguarTimeoutError("slow")
    assert isinstance(timeout, JaguarConnectionError) and isinstance(timeout, TimeoutError)
    for err in (ConfigurationError("x"), InvalidRequestError("x", field="width")):
        assert isinstance(err, ClientSideError) and not isinstance(err, APIStatusError)
