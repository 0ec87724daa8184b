"""Signed webhooks: delivery to a live receiver, and verify() accepting only the real thing."""

from __future__ import annotations

import time

import pytest

from jaguar_sdk import JaguarClient, WebhookVerificationError
from jaguar_sdk import _constants as C
from jaguar_sdk.webhooks import compute_signature, sign_headers, verify
from tests.jobs.conftest import Receiver, ServerFactory, SteppingEngine
from tests.support import LiveServer

SECRET = "whsec-test"
SMALL = {"width": 64, "height": 64}
LOOPBACK = ["127.0.0.1/32"]  # the receivers run on loopback: the operator allows it


def test_webhook_is_delivered_signed_and_verifies(
    make_server: ServerFactory, receiver: tuple[Receiver, LiveServer]
) -> None:
    app, hook = receiver
    server = make_server(webhook_secret=SECRET, webhook_allow=LOOPBACK)
    with JaguarClient(base_url=server.url) as client:
        job = client.submit("a jaguar", seed=5, webhook_url=f"{hook.url}/hook", **SMALL)
        assert job.wait(timeout=20).state == "succeeded"
    assert app.arrived.wait(10), "no webhook arrived"
    body, headers = app.posts[0]
    assert headers[C.HEADER_WEBHOOK_SIGNATURE.lower()].startswith("v1=")
    assert headers[C.HEADER_WEBHOOK_ID.lower()].startswith("wh_")
    document = verify(body, headers, SECRET)
    assert document["type"] == "job.succeeded"
    assert document["job"]["id"] == job.id
    assert document["result"]["seed"] == 5

    tampered = body.replace(b'"seed":5', b'"seed":6')
    assert tampered != body
    with pytest.raises(WebhookVerificationError, match="signature mismatch"):
        verify(tampered, headers, SECRET)
    with pytest.raises(WebhookVerificationError, match="signature mismatch"):
        verify(body, headers, "another-secret")
    stamp = int(headers[C.HEADER_WEBHOOK_TIMESTAMP.lower()])
    with pytest.raises(WebhookVerificationError, match="replay"):
        verify(body, headers, SECRET, now=stamp + 301)


def test_cancelled_job_posts_a_cancelled_webhook(
    make_server: ServerFactory, receiver: tuple[Receiver, LiveServer]
) -> None:
    app, hook = receiver
    engine = SteppingEngine(hold_at_step=1)
    server = make_server(engine, webhook_secret=SECRET, webhook_allow=LOOPBACK)
    with JaguarClient(base_url=server.url) as client:
        client.submit("blocks the worker", steps=2, **SMALL)
        assert engine.reached.wait(10)
        queued = client.submit("cancelled", webhook_url=hook.url, **SMALL)
        queued.cancel()
        engine.release()
    assert app.arrived.wait(10)
    document = verify(app.posts[0][0], app.posts[0][1], SECRET)
    assert document["type"] == "job.cancelled" and document["result"] is None


def test_verify_rejects_missing_malformed_and_future_headers() -> None:
    body = b'{"type":"job.succeeded"}'
    now = 1_700_000_000
    good = sign_headers(body, SECRET, webhook_id="wh_1", timestamp=now)
    assert verify(body, good, SECRET, now=now + 299) == {"type": "job.succeeded"}
    with pytest.raises(WebhookVerificationError, match="Missing"):
        verify(body, {}, SECRET, now=now)
    no_sig = {C.HEADER_WEBHOOK_TIMESTAMP: str(now)}
    with pytest.raises(WebhookVerificationError, match="Missing"):
        verify(body, no_sig, SECRET, now=now)
    bad_stamp = {**good, C.HEADER_WEBHOOK_TIMESTAMP: "yesterday"}
    with pytest.raises(WebhookVerificationError, match="Malformed"):
        verify(body, bad_stamp, SECRET, now=now)
    with pytest.raises(WebhookVerificationError, match="replay"):
        verify(body, good, SECRET, now=now - 400)  # from the future
    # several signatures (secret rotation): any matching v1 is accepted
    rotated = {**good, C.HEADER_WEBHOOK_SIGNATURE: f"v1=00ff, {good[C.HEADER_WEBHOOK_SIGNATURE]}"}
    assert verify(body, rotated, SECRET, now=now)["type"] == "job.succeeded"
    assert compute_signature(body, SECRET, now) == good[C.HEADER_WEBHOOK_SIGNATURE][3:]
    assert abs(int(sign_headers(body, SECRET)[C.HEADER_WEBHOOK_TIMESTAMP]) - time.time()) < 60
