"""``pip install jaguar-sdk`` with no extras: every part that needs one says which, the HTTP
client works.

The bare environment is a fresh venv holding a wheel of this checkout and its base dependencies
only (see ``tests/support/bare_env.py``); the server it talks to runs in the test process, from
the full environment, around the real tiny engine.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import LiveServer, serve_engine
from tests.support.bare_env import BareEnv, build_bare_env
from tests.support.cli import JaguarCli

TOKEN = "sk-bare-TOKEN-0123456789"
OPTIONAL = ("torch", "diffusers", "transformers", "fastapi", "uvicorn", "modal", "tqdm")


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> BareEnv:
    return build_bare_env(tmp_path_factory.mktemp("bare-install"))


@pytest.fixture(scope="module")
def server(tiny_engine: Any) -> Iterator[LiveServer]:
    live = serve_engine(tiny_engine, api_key=TOKEN)
    yield live
    live.stop()


@pytest.fixture
def cli(bare: BareEnv, tmp_path: Path) -> JaguarCli:
    return JaguarCli(tmp_path / "home", script=bare.script("jaguar"))


def run_python(bare: BareEnv, code: str, cwd: Path, **env: str) -> Any:
    """Run ``code`` with the bare interpreter (from ``cwd``, not the checkout); its JSON output."""
    done = subprocess.run(
        [str(bare.python), "-c", code],
        cwd=cwd,
        env={"PATH": "/usr/bin:/bin", "HOME": str(cwd), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_bare_env_has_the_client_and_no_extra(bare: BareEnv, tmp_path: Path) -> None:
    found = run_python(
        bare,
        "import importlib.util, json, jaguar_sdk\n"
        f"print(json.dumps({{'sdk': jaguar_sdk.__file__, 'present': "
        f"[m for m in {OPTIONAL!r} if importlib.util.find_spec(m)]}}))",
        tmp_path,
    )
    assert found["sdk"].startswith(str(bare.root))  # the installed wheel, not the checkout
    assert found["present"] == []


@pytest.mark.parametrize(
    ("args", "extra"),
    [
        (["serve"], "server,engine"),
        (["generate", "--local"], "engine"),
        (["info", "--local", "tiny"], "engine"),
        (["model", "tiny", "tiny-model"], "engine"),
        (["generate", "--modal-app", "shuttle-jaguar"], "modal"),
        (["model", "status", "--volume", "jaguar-model-weights"], "modal"),
        (["model", "check", "--root", "weights"], "engine"),  # the Hub: huggingface_hub
    ],
)
def test_cli_entry_points_name_the_extra(cli: JaguarCli, args: list[str], extra: str) -> None:
    done = cli(*args)
    assert done.returncode == 3, done.stderr
    assert done.stderr.startswith("error: ") and "Traceback" not in done.stderr
    assert done.stderr.rstrip().endswith(f"pip install 'jaguar-sdk[{extra}]'"), done.stderr


def test_progress_without_tqdm_fails_before_any_request(
    cli: JaguarCli, server: LiveServer, tiny_engine: Any
) -> None:
    before = server.service.health().model_dump()  # type: ignore[attr-defined]
    done = cli("generate", "--url", server.url, "--token", TOKEN, "--progress")
    assert done.returncode == 3
    assert "pip install 'jaguar-sdk[progress]'" in done.stderr
    assert not cli.config_path.exists()  # nothing proved, nothing saved
    assert server.service.health().model_dump() == before  # type: ignore[attr-defined]


PYTHON_ENTRY_POINTS = """
import asyncio, json, os
from jaguar_sdk import AsyncJaguarClient, ConfigurationError, JaguarClient

URL, TOKEN = os.environ["URL"], os.environ["TOKEN"]
outcomes = {}

def attempt(name, call):
    try:
        call()
        outcomes[name] = "ok"
    except ConfigurationError as exc:
        outcomes[name] = str(exc)
    except Exception as exc:  # anything else is a failure of the test
        outcomes[name] = f"{type(exc).__name__}: {exc}"

def many_with_progress():
    with JaguarClient(base_url=URL, api_key=TOKEN) as client:
        client.generate_many(["a cat"], progress=True, width=64, height=64)

def engine():
    from jaguar_sdk.engine import Engine

def tiny():
    from jaguar_sdk.engine import build_tiny_model
    build_tiny_model("tiny-model")

def create_app():
    from jaguar_sdk.server import create_app

def serve():
    from jaguar_sdk.server import serve

def hub():
    from jaguar_sdk.weights import HubFetcher
    HubFetcher().resolve("shuttleai/shuttle-jaguar", "main")

def volume():
    from jaguar_sdk.weights import ModalVolumeStorage
    ModalVolumeStorage("jaguar-model-weights")

attempt("from_modal", lambda: JaguarClient.from_modal())
attempt("async_from_modal", lambda: AsyncJaguarClient.from_modal())
attempt("local", lambda: JaguarClient.local())
attempt("async_local", lambda: AsyncJaguarClient.local())
attempt("generate_many_progress", many_with_progress)
attempt("engine", engine)
attempt("build_tiny_model", tiny)
attempt("create_app", create_app)
attempt("serve", serve)
attempt("hub", hub)
attempt("volume", volume)

# the client over HTTP: generate, jobs, the async client
with JaguarClient(base_url=URL, api_key=TOKEN) as client:
    result = client.generate("a cat", width=64, height=64, seed=5)
    job = client.submit("a dog", width=64, height=64, steps=2)
    job_result = job.result(timeout=60)
    stages = [event.stage for event in job.status().events]

async def async_generate():
    async with AsyncJaguarClient(base_url=URL, api_key=TOKEN) as client:
        return (await client.generate("a bird", width=64, height=64)).image.width

outcomes["http"] = {
    "seed": result.seed,
    "size": [result.image.width, result.image.height],
    "model": result.model.id,
    "job_size": job_result.image.width,
    "stages": stages,
    "async_width": asyncio.run(async_generate()),
}
print(json.dumps(outcomes))
"""


def test_python_entry_points(bare: BareEnv, server: LiveServer, tmp_path: Path) -> None:
    out = run_python(bare, PYTHON_ENTRY_POINTS, tmp_path, URL=server.url, TOKEN=TOKEN)
    wanted = {
        "from_modal": "modal",
        "async_from_modal": "modal",  # when called, not at the first request
        "local": "engine",
        "async_local": "engine",
        "generate_many_progress": "progress",
        "engine": "engine",
        "build_tiny_model": "engine",
        "create_app": "server",
        "serve": "server,engine",
        "hub": "engine",
        "volume": "modal",
    }
    for name, extra in wanted.items():
        assert out[name].endswith(f"pip install 'jaguar-sdk[{extra}]'"), (name, out[name])
    http = out["http"]
    assert http["seed"] == 5 and http["size"] == [64, 64] and http["model"] == "tiny"
    assert http["job_size"] == 64 and http["async_width"] == 64
    assert http["stages"][0] == "queued" and http["stages"][-1] == "done"


def test_the_cli_over_http(cli: JaguarCli, server: LiveServer) -> None:
    done = cli("generate", "a cat", "--url", server.url, "--token", TOKEN, "--size", "64",
               "--seed", "9", "-o", "cat.png")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "seed: 9" in done.stdout and (cli.home / "cat.png").is_file()
    assert cli.config() == {"base_url": server.url, "api_keys": {server.url: TOKEN}}
    done = cli("info")  # the saved URL and token
    assert done.returncode == 0 and "model: id=tiny" in done.stdout, done.stdout
