"""Bearer tokens: generation/info with api_key, admin routes always guarded."""

from __future__ import annotations

import httpx
import pytest

TOKEN = "tok-generate-5f1e9a"
ADMIN = "tok-admin-77c0b2"
BODY = {"prompt": "a cat", "width": 64, "height": 64}


def _no_secret(r: httpx.Response) -> None:
    text = r.text + " ".join(f"{k}: {v}" for k, v in r.headers.items())
    assert TOKEN not in text and ADMIN not in text


def test_generate_needs_the_api_key(make_server) -> None:
    server = make_server(api_key=TOKEN)
    with httpx.Client(base_url=server.url) as c:
        missing = c.post("/v1/generate", json=BODY)
        assert missing.status_code == 401
        assert missing.headers["WWW-Authenticate"] == "Bearer"
        assert missing.json()["error"]["code"] == "unauthorized"
        wrong = c.post("/v1/generate", json=BODY, headers={"Authorization": "Bearer nope"})
        assert wrong.status_code == 401
        basic = c.post("/v1/generate", json=BODY, headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401
        ok = c.post("/v1/generate", json=BODY, headers={"Authorization": f"Bearer {TOKEN}"})
        assert ok.status_code == 200
        assert c.get("/v1/info").status_code == 401
        assert c.get("/v1/info", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        for r in (missing, wrong, basic, ok):
            _no_secret(r)


def test_auth_is_checked_before_the_body(make_server) -> None:
    server = make_server(api_key=TOKEN)
    r = httpx.post(f"{server.url}/v1/generate", content=b"not json")
    assert r.status_code == 401


def test_health_and_ready_never_need_a_token(make_server) -> None:
    server = make_server(api_key=TOKEN, admin_key=ADMIN)
    assert httpx.get(f"{server.url}/v1/health").status_code == 200
    assert httpx.get(f"{server.url}/v1/ready").status_code == 200


def test_non_ascii_token_is_a_clean_401(make_server) -> None:
    server = make_server(api_key=TOKEN)
    r = httpx.post(
        f"{server.url}/v1/generate",
        json=BODY,
        headers={"Authorization": "Bearer ünïcödé".encode()},
    )
    assert r.status_code == 401


def test_reload_without_any_token_configured_is_403(make_server) -> None:
    server = make_server()
    r = httpx.post(f"{server.url}/v1/admin/reload")
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "forbidden"
    assert "--admin-token" in r.json()["error"]["message"]
    # Even a token cannot open admin routes when none is configured.
    r = httpx.post(f"{server.url}/v1/admin/reload", headers={"Authorization": "Bearer x"})
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("config", "good"),
    [({"api_key": TOKEN}, TOKEN), ({"api_key": TOKEN, "admin_key": ADMIN}, ADMIN)],
)
def test_reload_with_token(make_server, config: dict[str, str], good: str) -> None:
    server = make_server(**config)
    url = f"{server.url}/v1/admin/reload"
    missing = httpx.post(url)
    assert missing.status_code == 401 and missing.headers["WWW-Authenticate"] == "Bearer"
    wrong = httpx.post(url, headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    ok = httpx.post(url, headers={"Authorization": f"Bearer {good}"})
    assert ok.status_code == 200
    assert ok.json()["model"]["id"] == "fake"
    for r in (missing, wrong, ok):
        _no_secret(r)


def test_generation_key_does_not_open_admin_routes(make_server) -> None:
    server = make_server(api_key=TOKEN, admin_key=ADMIN)
    r = httpx.post(f"{server.url}/v1/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 401


def test_admin_key_also_opens_generation(make_server) -> None:
    server = make_server(api_key=TOKEN, admin_key=ADMIN)
    r = httpx.post(
        f"{server.url}/v1/generate", json=BODY, headers={"Authorization": f"Bearer {ADMIN}"}
    )
    assert r.status_code == 200


def test_reload_swaps_the_engine(make_server) -> None:
    from jaguar_sdk.server import create_app
    from jaguar_sdk.server._service import JaguarService
    from tests.support import FakeEngine, LiveServer

    engines: list[FakeEngine] = []

    def loader() -> FakeEngine:
        engines.append(FakeEngine(model_id=f"fake-{len(engines)}"))
        return engines[-1]

    service = JaguarService(loader)
    service.start()
    with LiveServer(create_app(service, admin_key=ADMIN)) as server:
        r = httpx.post(
            f"{server.url}/v1/admin/reload", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert r.status_code == 200 and r.json()["model"]["id"] == "fake-1"
        assert engines[0].closed
        assert httpx.get(f"{server.url}/v1/info").json()["model"]["id"] == "fake-1"


def test_failed_reload_is_a_500_and_the_old_model_keeps_serving(make_server) -> None:
    from jaguar_sdk.server import create_app
    from jaguar_sdk.server._service import JaguarService
    from tests.support import FakeEngine, LiveServer

    calls = {"n": 0}
    first = FakeEngine()

    def loader() -> FakeEngine:
        calls["n"] += 1
        if calls["n"] > 1:
            raise OSError("/secret/path/weights unreadable")
        return first

    service = JaguarService(loader)
    service.start()
    with LiveServer(create_app(service, admin_key=ADMIN)) as server:
        r = httpx.post(
            f"{server.url}/v1/admin/reload", headers={"Authorization": f"Bearer {ADMIN}"}
        )
        assert r.status_code == 500
        assert r.json()["error"]["code"] == "reload_failed"
        assert "Traceback" not in r.text
        ok = httpx.post(f"{server.url}/v1/generate", json=BODY)
        assert ok.status_code == 200
