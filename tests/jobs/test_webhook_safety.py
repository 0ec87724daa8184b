"""Hostile and malformed webhook URLs, delivery failures, slow receivers (issue 14, #3 #5 #6).

No test here sends traffic beyond loopback: refused URLs are refused at submission (a recording
sender stands in for delivery, so even a server that accepted them would post nowhere), and the
receivers are on 127.0.0.1, reached only through the operator's allow-list or a stubbed DNS.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.jobs.conftest import Receiver, ServerFactory, SteppingEngine
from tests.support import LiveServer

SECRET = "whsec-test"
SMALL = {"prompt": "a hooked cat", "width": 64, "height": 64}


class RecordingSender:
    """Stands in for delivery: records what would have been posted, sends nothing."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: str, status: Any, result: Any) -> None:
        self.urls.append(url)


def _wait_for(predicate, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


HOSTILE = [
    # loopback, in every spelling the attack used and a few more
    "http://127.0.0.1:{port}/v1/admin/reload",
    "http://[::1]:{port}/v1/admin/reload",
    "http://0.0.0.0:{port}/",
    "http://2130706433:{port}/",
    "http://0x7f.1:{port}/",
    "http://0177.0.0.1:{port}/",
    "http://127.1:{port}/",
    "http://localhost:{port}/",
    "http://[::ffff:127.0.0.1]:{port}/",
    "http://[0:0:0:0:0:ffff:7f00:1]:{port}/",
    "http://[2002:7f00:1::]:{port}/",  # 6to4 around 127.0.0.1
    "http://[64:ff9b::7f00:1]:{port}/",  # NAT64 around 127.0.0.1
    # link-local (cloud metadata), private, unique-local, multicast, unspecified
    "http://169.254.169.254/latest/meta-data/",
    "http://[fe80::1]/",
    "http://10.0.0.1/",
    "http://172.16.5.4/",
    "http://192.168.1.1/",
    "http://[fc00::1]/",
    "http://224.0.0.1/",
    "http://[ff02::1]/",
    "http://[::]/",
    # credentials in the URL (would be forwarded as Basic auth)
    "http://user:pass@hooks.example.com/",
    "https://token@hooks.example.com/",
]

MALFORMED = [
    "http://[::1/",
    "http://hooks.example.com/\r\nX-Injected: 1",
    "http://hooks.example.com/\x00",
    "http://hooks.example.com/\ud800",
    "http://hooks.example.com:99999/",
    "ftp://hooks.example.com/",
    "http:///no-host",
    "not a url",
    12,
]


@pytest.fixture
def recording_server(make_server: ServerFactory) -> Iterator[tuple[LiveServer, RecordingSender]]:
    server = make_server(webhook_secret=SECRET)
    sender = RecordingSender()
    server.service.jobs.webhook_sender = sender  # type: ignore[attr-defined]
    yield server, sender


@pytest.mark.parametrize("template", HOSTILE)
def test_internal_and_credentialed_webhook_urls_are_refused_422(
    recording_server: tuple[LiveServer, RecordingSender], template: str
) -> None:
    server, sender = recording_server
    url = template.format(port=server.port)
    r = httpx.post(f"{server.url}/v1/jobs", json={**SMALL, "webhook_url": url}, timeout=10)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "webhook_url"
    assert "webhook_url" in r.json()["error"]["message"]
    assert sender.urls == []


@pytest.mark.parametrize("value", MALFORMED)
def test_malformed_webhook_urls_are_refused_422(
    recording_server: tuple[LiveServer, RecordingSender], value: Any
) -> None:
    server, sender = recording_server
    body = f'{{"prompt": "x", "width": 64, "height": 64, "webhook_url": {_json(value)}}}'
    r = httpx.post(
        f"{server.url}/v1/jobs",
        content=body.encode(),
        headers={"content-type": "application/json"},
        timeout=10,
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == "webhook_url"
    assert sender.urls == []


def test_a_malformed_url_is_422_even_without_a_webhook_secret(make_server: ServerFactory) -> None:
    server = make_server()  # no secret
    r = httpx.post(f"{server.url}/v1/jobs", json={**SMALL, "webhook_url": "http://[::1/"})
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "webhook_url"


@pytest.mark.parametrize(
    "url", ["http://user:pass@hooks.example.com/", "http://[::1/", "ftp://x/", "http://x/\r\n"]
)
def test_the_client_checks_the_same_form_before_sending(
    recording_server: tuple[LiveServer, RecordingSender], url: str
) -> None:
    from jaguar_sdk import InvalidRequestError, JaguarClient

    server, _ = recording_server
    with (
        JaguarClient(base_url=server.url, max_retries=0) as client,
        pytest.raises(InvalidRequestError) as refused,
    ):
        client.submit("a cat", webhook_url=url, width=64, height=64)
    assert refused.value.field == "webhook_url"
    assert len(server.service.jobs) == 0  # type: ignore[attr-defined]  # nothing reached it


def _json(value: Any) -> str:
    import json

    # ensure_ascii keeps a lone surrogate as the escape \ud800 (valid JSON text)
    return json.dumps(value, ensure_ascii=True)


# --- delivery ---------------------------------------------------------------------------------


class Failing:
    """A receiver that answers 500 to every post."""

    def __init__(self) -> None:
        self.posts = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.posts += 1
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"no"})


def test_a_failed_delivery_is_logged_and_visible_on_the_job(
    make_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="jaguar_sdk")
    receiver = Failing()
    with LiveServer(receiver) as hook:
        server = make_server(webhook_secret=SECRET, webhook_allow=["127.0.0.1/32"])
        with httpx.Client(base_url=server.url, timeout=10) as c:
            job = c.post("/v1/jobs", json={**SMALL, "webhook_url": f"{hook.url}/h"}).json()
            _wait_for(
                lambda: (
                    (c.get(f"/v1/jobs/{job['id']}").json().get("webhook") or {}).get("state")
                    == "failed"
                )
            )
            status = c.get(f"/v1/jobs/{job['id']}").json()
    assert status["state"] == "succeeded"
    assert status["webhook"]["attempts"] == receiver.posts >= 1
    assert "500" in status["webhook"]["last_error"]
    assert any(
        job["id"] in r.getMessage() and "webhook" in r.getMessage()
        for r in caplog.records
        if r.levelno >= logging.WARNING
    )


def test_a_delivered_webhook_is_visible_on_the_job(
    make_server: ServerFactory, receiver: tuple[Receiver, LiveServer]
) -> None:
    app, hook = receiver
    server = make_server(webhook_secret=SECRET, webhook_allow=["127.0.0.1/32"])
    with httpx.Client(base_url=server.url, timeout=10) as c:
        job = c.post("/v1/jobs", json={**SMALL, "webhook_url": hook.url}).json()
        _wait_for(
            lambda: (
                (c.get(f"/v1/jobs/{job['id']}").json().get("webhook") or {}).get("state")
                == "delivered"
            )
        )
    assert app.arrived.is_set()


def test_dns_rebinding_is_refused_at_connect_time(
    make_server: ServerFactory,
    receiver: tuple[Receiver, LiveServer],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The host resolves to a public address when submitted, to loopback when delivered."""
    app, hook = receiver
    real = socket.getaddrinfo
    phase = {"submitting": True}

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.test":
            # The public answer is never connected to: only the submission check sees it, and
            # the job is held until the answer has turned to loopback.
            address = "8.8.8.8" if phase["submitting"] else "127.0.0.1"
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    engine = SteppingEngine(hold_at_step=1)
    server = make_server(engine, webhook_secret=SECRET)
    with httpx.Client(base_url=server.url, timeout=10) as c:
        r = c.post(
            "/v1/jobs",
            json={**SMALL, "steps": 1, "webhook_url": f"http://rebind.test:{hook.port}/hook"},
        )
        assert r.status_code == 202, r.text
        phase["submitting"] = False  # the DNS answer changes before delivery
        assert engine.reached.wait(10)
        engine.release()
        job_id = r.json()["id"]

        def settled() -> bool:
            hook_state = (c.get(f"/v1/jobs/{job_id}").json().get("webhook") or {}).get("state")
            return app.arrived.is_set() or hook_state == "failed"

        _wait_for(settled)
        status = c.get(f"/v1/jobs/{job_id}").json()
    assert not app.arrived.is_set(), "the webhook reached a loopback address"
    assert "127.0.0.1" in status["webhook"]["last_error"]
    assert status["webhook"]["attempts"] == 1  # a refused address is not retried


# --- one slow receiver never delays another job's webhook (issue 14, #6) ----------------------


class Stalling:
    """A receiver that holds every post until released."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.arrived = threading.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.arrived.set()
        while not self.released.is_set():
            await asyncio.sleep(0.02)
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def test_a_slow_receiver_does_not_delay_other_webhooks(
    make_server: ServerFactory, receiver: tuple[Receiver, LiveServer]
) -> None:
    fast_app, fast = receiver
    stalling = Stalling()
    with LiveServer(stalling) as slow:
        try:
            server = make_server(webhook_secret=SECRET, webhook_allow=["127.0.0.1/32"])
            with httpx.Client(base_url=server.url, timeout=10) as c:
                for i in range(3):  # several jobs for the slow receiver first
                    c.post("/v1/jobs", json={**SMALL, "webhook_url": f"{slow.url}/{i}"})
                assert stalling.arrived.wait(10)
                c.post("/v1/jobs", json={**SMALL, "webhook_url": f"{fast.url}/fast"})
                # The slow receiver still holds its posts; the other one is served anyway.
                assert fast_app.arrived.wait(5), "the webhook waited behind a slow receiver"
                assert not stalling.released.is_set()
        finally:
            stalling.released.set()
