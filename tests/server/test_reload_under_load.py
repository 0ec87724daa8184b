"""Reload under load: requests queued or running on the old engine finish on it (issue 14, #1).

The old engine is released only once its last request is done, so a busy server that is told
to reload answers every request: none sees 503 "The engine was closed".
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from jaguar_sdk.server._service import JaguarService
from tests.support import FakeEngine

ADMIN = "adm1n"
BODY = {"prompt": "a busy cat", "width": 64, "height": 64}


def _wait_for(predicate, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)


def test_reload_under_load_drops_no_request_and_releases_the_old_engine_last(
    make_server,
) -> None:
    # Serial engines (one generation at a time, like the GPU lock) so that many requests are
    # queued on the old engine when the reload swaps it out.
    old = FakeEngine(delay_s=0.02, serial=True, model_id="old")
    new = FakeEngine(delay_s=0.02, serial=True, model_id="new")
    server = make_server(
        old, admin_key=ADMIN, service_options={"reloader": lambda: new, "max_jobs": 16}
    )
    jobs: list[str] = []
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for i in range(4):
            r = client.post("/v1/jobs", json={**BODY, "prompt": f"job {i}"})
            assert r.status_code == 202
            jobs.append(r.json()["id"])

        def one(i: int) -> tuple[int, str]:
            r = client.post("/v1/generate", json={**BODY, "seed": i})
            return r.status_code, (r.json().get("model") or {}).get("id", r.text)

        with ThreadPoolExecutor(32) as pool:
            futures = [pool.submit(one, i) for i in range(32)]
            _wait_for(lambda: old.calls >= 3)
            reload = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {ADMIN}"})
            answers = [f.result() for f in futures]
        assert reload.status_code == 200 and reload.json()["model"]["id"] == "new"
        failures = [a for a in answers if a[0] != 200]
        assert failures == [], f"{len(failures)} requests failed during the reload: {failures[:3]}"
        for job_id in jobs:
            _wait_for(
                lambda j=job_id: (
                    client.get(f"/v1/jobs/{j}").json()["state"] != "queued"
                    and client.get(f"/v1/jobs/{j}").json()["state"] != "running"
                )
            )
            assert client.get(f"/v1/jobs/{job_id}").json()["state"] == "succeeded"
        # after the swap new requests run on the new engine
        assert client.post("/v1/generate", json=BODY).json()["model"]["id"] == "new"
    assert old.closed, "the old engine was never released"
    assert not old.closed_while_busy, "the old engine was closed under a queued request"
    assert not new.closed


def test_service_releases_the_old_engine_when_its_last_request_finishes() -> None:
    gate = threading.Event()

    entered = threading.Event()

    class Held(FakeEngine):
        def generate(self, request, *, request_id, on_progress=None):
            entered.set()
            assert gate.wait(10)
            return super().generate(request, request_id=request_id, on_progress=on_progress)

    old, new = Held(model_id="old"), FakeEngine(model_id="new")
    service = JaguarService(lambda: old, reloader=lambda: new)
    service.start()
    result: dict[str, object] = {}
    runner = threading.Thread(
        target=lambda: result.setdefault("r", service.generate({"prompt": "held"}))
    )
    runner.start()
    assert entered.wait(10)
    assert service.reload().model.id == "new"
    assert not old.closed, "closed while a request was still running on it"
    gate.set()
    runner.join(10)
    assert result["r"].model.id == "old"  # type: ignore[attr-defined]
    assert old.closed and not old.closed_while_busy
    service.close()
    assert new.closed
