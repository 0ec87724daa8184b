"""Shuttle Jaguar on Modal: a CPU weights function, a GPU class, a CPU web function.

Deploy from the repository root, in this order (docs/deploy.md has the details)::

    modal secret create jaguar-api-token JAGUAR_SERVER_TOKEN=...   # the HTTP API's token
    modal run deploy/app.py::download_weights                     # once: weights -> Volume (CPU)
    modal deploy deploy/app.py
    jaguar health --url https://<workspace>--shuttle-jaguar-web.modal.run --token ...

Settings come from ``JAGUAR_*`` variables in the shell that deploys (``deploy/settings.py``); they
are read once, here, and baked into the images, so the containers see the same values.

Read top to bottom: settings -> images -> Volume, state Dict, secrets -> ``download_weights``
(CPU) -> ``JaguarModel`` (GPU: load to host RAM before the memory snapshot, asking nothing of
CUDA; after each restore check CUDA, re-read ``CURRENT``, move to the GPU, warm up) -> ``web``
(CPU, ``@modal.concurrent``: the HTTP API, calling ``JaguarModel``) -> runtime autoscaling.

Importing this module needs no Modal token, network or torch: Modal objects are lazy, and the
engine is imported inside the GPU container's hooks (torch and diffusers are not imported at
global scope with ``image.imports()``: the web and weights containers have no torch, and in the
GPU container the imports must run under the no-CUDA-query guard of the snapshot phase).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import modal

if __package__ in (None, ""):  # `modal deploy deploy/app.py` imports this file as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.container import ModelContainer
from deploy.settings import DeploySettings
from deploy.weights import ENV_WEIGHTS_DIR, WEIGHTS_MOUNT, download, open_store
from jaguar_sdk.transports import state_dict_name
from jaguar_sdk.weights.layout import compile_cache_dirs

if TYPE_CHECKING:
    from jaguar_sdk.weights import Fetcher

__all__ = [
    "CLASS_NAME",
    "ENV_WEIGHTS_DIR",
    "WEIGHTS_MOUNT",
    "JaguarModel",
    "app",
    "download_weights",
    "fetcher_factory",
    "settings",
    "update_autoscaler",
    "web",
]

logger = logging.getLogger("jaguar_sdk.deploy")

# --- settings ---------------------------------------------------------------------------------
settings = DeploySettings.from_env()
app = modal.App(settings.app_name)
#: The class name clients look up (``JaguarClient.from_modal(app, "JaguarModel")``). Stable.
CLASS_NAME = "JaguarModel"

# --- images -----------------------------------------------------------------------------------
# PyPI's Linux x86_64 torch wheels are CUDA builds (they pull the nvidia-* runtime wheels), so
# the same torch==2.13.0 that the dev machines run as a CPU wheel runs on Modal's GPUs. The rest
# is pinned to the versions the engine and server are tested with.
ENGINE_PACKAGES: tuple[str, ...] = (
    "torch==2.13.0",
    "diffusers==0.42.1",
    "transformers==5.23.0",
    "accelerate==1.15.0",
    "safetensors==0.8.0",
    "numpy==2.4.6",
    "peft==0.21.2",  # LoRA adapters
)
SERVER_PACKAGES: tuple[str, ...] = (
    "fastapi==0.165.0",
    "uvicorn==0.54.0",
    "python-multipart==0.0.34",  # multipart/form-data bodies (input images as files)
    "anyio==4.16.0",
    "httpx==0.28.1",
    "pydantic==2.14.3",
    "tenacity==9.2.1",
    "pillow==13.0.0",
)
HUB_PACKAGES: tuple[str, ...] = ("huggingface_hub==2.4.0", "hf_xet==1.8.0", "tqdm==4.70.1")
#: Added to the GPU image only with JAGUAR_FP8=true (not verified against torch 2.13 on a GPU).
FP8_PACKAGES: tuple[str, ...] = ("torchao==0.18.0",)

image_env = {
    "HF_XET_HIGH_PERFORMANCE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    # torch.compile artifacts persist on the Volume (committed after warm-up).
    **compile_cache_dirs(WEIGHTS_MOUNT),
    **settings.to_env(),
}
if settings.snapshot == "gpu":
    image_env["TORCHINDUCTOR_COMPILE_THREADS"] = "1"  # GPU snapshots can fail with compile threads

# The web and weights functions run on a small image without torch (fast cold starts).
cpu_image = (
    modal.Image.debian_slim(python_version="3.11")
    .uv_pip_install(*SERVER_PACKAGES, *HUB_PACKAGES)
    .env(image_env)
    .add_local_python_source("jaguar_sdk", "deploy")
)
gpu_image = (
    modal.Image.debian_slim(python_version="3.11")
    .uv_pip_install(
        *ENGINE_PACKAGES,
        *SERVER_PACKAGES,
        *HUB_PACKAGES,
        *(FP8_PACKAGES if settings.fp8 else ()),
    )
    .env(image_env)
    .add_local_python_source("jaguar_sdk", "deploy")
)

# --- Volume, shared state, secrets ------------------------------------------------------------
#: The weights Volume (versioned, verified copies; see jaguar_sdk/engine/store.py).
volume = modal.Volume.from_name(settings.volume_name, create_if_missing=True)
#: Shared by every container: idempotency keys of the web API and job outcome records.
state = modal.Dict.from_name(state_dict_name(settings.app_name), create_if_missing=True)
#: HF_TOKEN, only for gated/private repos or Hub rate limits (shuttle-jaguar is public).
hf_secrets = [modal.Secret.from_name(settings.hf_secret)] if settings.hf_secret else []
#: JAGUAR_SERVER_TOKEN (and optionally JAGUAR_ADMIN_TOKEN) for the HTTP API's bearer auth.
web_secrets = (
    [modal.Secret.from_name(settings.token_secret)] if settings.web_auth == "token" else []
)


def _default_fetcher() -> Fetcher:
    from jaguar_sdk.weights import HubFetcher

    return HubFetcher()


#: Makes the fetcher that downloads weights: the Hub on Modal; tests swap in a local folder.
fetcher_factory: Callable[[], Fetcher] = _default_fetcher


def _noop() -> None:
    return None


def volume_hooks() -> tuple[Callable[[], None], Callable[[], None]]:
    """``Volume.commit``/``Volume.reload`` in a Modal container; no-ops on a local folder.

    Tests replace ``volume`` with a stand-in that models Modal's visibility rules.
    """
    if isinstance(volume, modal.Volume) and (modal.is_local() or os.environ.get(ENV_WEIGHTS_DIR)):
        return _noop, _noop
    return volume.commit, volume.reload


# --- 1. the weights function (CPU): a deploy step, never on a GPU -----------------------------
@app.function(
    image=cpu_image,
    volumes={WEIGHTS_MOUNT: volume},
    secrets=hf_secrets,
    cpu=8.0,  # hashing 34 GB and hf_xet's parallel downloads
    memory=8192,
    timeout=settings.weights_timeout_s,  # >= 3600 s: a first download of ~34 GB
)
def download_weights(force: bool = False) -> dict[str, Any]:
    """Verify-or-download the weights into the Volume (a deploy step).

    Run it with ``modal run deploy/app.py::download_weights`` (``--force`` to re-verify).

    Args:
        force: Hash every file and re-download a corrupt copy (``--force``; ``reload`` uses it).

    Returns:
        ``{"repo_id", "revision", "source", "path", "full_verified"}``.
    """
    commit, reload = volume_hooks()
    store = open_store(commit, reload)
    return download(store, DeploySettings.from_env(), fetcher_factory(), force=force)


def run_weights_function(force: bool) -> dict[str, Any]:
    """Call the weights function from a GPU container (in-process under ``.local()``)."""
    if modal.is_local():
        result: dict[str, Any] = download_weights.local(force=force)
    else:
        result = download_weights.remote(force=force)
    return result


# --- 2. the GPU class ---------------------------------------------------------------------------
_SNAP = settings.snapshot != "off"


@app.cls(
    image=gpu_image,
    gpu=settings.gpu,
    cpu=settings.cpu,
    memory=settings.memory_mb,
    volumes={WEIGHTS_MOUNT: volume},
    secrets=hf_secrets,  # HF_TOKEN, where set, for info's update check of a private repo
    timeout=settings.timeout_s,
    # Bounds the enter hooks (load, snapshot, restore, compile, warm-up); Modal's default is
    # `timeout` (app.py: startup_timeout=startup_timeout or timeout).
    startup_timeout=settings.startup_timeout_s,
    scaledown_window=settings.scaledown_window_s,
    min_containers=settings.min_containers,
    buffer_containers=settings.buffer_containers,
    max_containers=settings.max_containers,
    enable_memory_snapshot=_SNAP,
    experimental_options={"enable_gpu_snapshot": True} if settings.snapshot == "gpu" else None,
)
class JaguarModel:
    """Shuttle Jaguar on one GPU container: one input at a time (no ``@modal.concurrent``).

    The engine serialises GPU work behind one lock anyway; taking one input per container lets
    Modal's autoscaler see the queue and start containers, and keeps cancellation per input
    (for a sync method without input concurrency Modal raises ``InputCancellation`` in the
    running input; with it, it SIGINTs the whole container: ``_container_entrypoint.py``).

    Methods take and return plain dicts with a ``schema_version``; failures come back as
    ``{"schema_version": 1, "error": {...}}``, never as pickled exceptions. Calling them needs a
    Modal token of the workspace.
    """

    container: ModelContainer

    @modal.enter(snap=_SNAP)
    def load_to_cpu(self) -> None:
        """Before the snapshot: find the weights, read them into host RAM, no CUDA query."""
        commit, reload = volume_hooks()
        self.container = ModelContainer(
            DeploySettings.from_env(),
            open_store=lambda: open_store(commit, reload),
            volume_reload=reload,
            run_weights_function=run_weights_function,
            in_container=lambda: not modal.is_local(),
            job_records=state,
            current_call_id=lambda: modal.current_function_call_id(),
            fetcher=lambda: fetcher_factory(),
        )
        self.container.load_to_cpu()

    @modal.enter(snap=False)
    def to_gpu(self) -> None:
        """After each restore: check CUDA, re-read CURRENT, move to the GPU, warm up."""
        self.container.to_gpu()

    @modal.exit()
    def release(self) -> None:
        """At shutdown (30 s grace): release the engine."""
        self.container.close()

    @modal.method()
    def generate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Generate images: ``{"schema_version", "request", "request_id", "idempotency_key"}``
        in, ``GenerationResult.model_dump()`` (image bytes raw) or an error envelope out."""
        return self.container.call("generate", payload)

    @modal.method()
    def info(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """What this container serves: ``ModelInfo.model_dump()``; ``extra`` says where its
        weights came from (snapshot, volume, huggingface), the revision ``CURRENT`` names, the
        GPU it runs on, and this container's own timings."""
        return self.container.call("info", payload)

    @modal.method()
    def health(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """``HealthStatus.model_dump()``; never an error."""
        return self.container.call("health", payload)

    @modal.method()
    def reload(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Verify every weight file (sha256, in the weights function), repair, load the revision
        ``CURRENT`` names and swap it in; answers what ``info`` answers. Only this container
        reloads; others pick up ``CURRENT`` at their next start."""
        return self.container.call("reload", payload)


def gpu_class() -> Any:
    """The GPU class as the web function calls it (tests swap in a stand-in)."""
    return JaguarModel


# --- 3. the web function (CPU): the HTTP API ------------------------------------------------------
@app.function(
    image=cpu_image,
    secrets=web_secrets,
    cpu=1.0,
    memory=1024,
    # A request waits for the GPU (cold start included); past 150 s Modal answers 303 and the
    # function keeps running until the call ends.
    timeout=min(86400, settings.timeout_s + settings.startup_timeout_s),
    scaledown_window=settings.scaledown_window_s,
)
@modal.concurrent(max_inputs=settings.web_max_inputs)
@modal.asgi_app(requires_proxy_auth=settings.web_auth == "proxy")
def web() -> Any:
    """The FastAPI app of ``jaguar serve``, over the GPU class (``deploy/web.py``).

    Health never wakes a GPU; job status never downloads images; an ``Idempotency-Key`` holds
    across web containers. Token auth without a token answers 503 naming the secret to create.
    """
    from deploy.web import build_web_app

    return build_web_app(
        DeploySettings.from_env(),
        gpu_class=gpu_class(),
        state=state,
        class_name=CLASS_NAME,
        environ=os.environ,
    )


# --- runtime autoscaling ------------------------------------------------------------------------
def update_autoscaler(
    *,
    app_name: str | None = None,
    environment: str | None = None,
    min_containers: int | None = None,
    max_containers: int | None = None,
    buffer_containers: int | None = None,
    scaledown_window: int | None = None,
) -> Any:
    """Change the deployed GPU class's autoscaling now, without redeploying (reverted on redeploy).

    Args:
        app_name: The deployed app; the ``JAGUAR_APP_NAME`` default when omitted.
        environment: The Modal environment; the profile's default when omitted.
        min_containers: Containers kept warm even when idle.
        max_containers: Upper bound on containers.
        buffer_containers: Extra idle containers while busy.
        scaledown_window: Idle seconds (2..3600) before a container stops.

    Returns:
        Modal's ``FunctionAutoscalerSettings`` (the result of ``update_autoscaler``).

    Raises:
        modal.exception.NotFoundError: The app is not deployed.
        modal.exception.AuthError: No Modal token (``modal token new``).

    Example:
        >>> update_autoscaler(min_containers=1, scaledown_window=600)  # doctest: +SKIP
    """
    changes = {
        "min_containers": min_containers,
        "max_containers": max_containers,
        "buffer_containers": buffer_containers,
        "scaledown_window": scaledown_window,
    }
    kwargs = {k: v for k, v in changes.items() if v is not None}
    if not kwargs:
        raise ValueError("nothing to change: pass at least one autoscaler setting")
    if scaledown_window is not None and not 2 <= scaledown_window <= 3600:
        raise ValueError(f"scaledown_window={scaledown_window} is not valid; allowed: 2..3600")
    cls = modal.Cls.from_name(
        app_name or settings.app_name, CLASS_NAME, environment_name=environment
    )
    # Modal 1.6 has no Cls.update_autoscaler: it lives on an instance (the default variant).
    return cls().update_autoscaler(**kwargs)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m deploy.app scale --min-containers 1``: runtime autoscaling from a shell.

    (Not a ``modal run`` local entrypoint: that would start an ephemeral copy of the whole app,
    GPU class included.)
    """
    parser = argparse.ArgumentParser(prog="python -m deploy.app")
    sub = parser.add_subparsers(dest="command", required=True)
    scale = sub.add_parser("scale", help="update the deployed class's autoscaler")
    scale.add_argument("--app", default=None, help="app name (default: JAGUAR_APP_NAME)")
    scale.add_argument("--env", default=None, help="Modal environment")
    scale.add_argument("--min-containers", type=int, default=None)
    scale.add_argument("--max-containers", type=int, default=None)
    scale.add_argument("--buffer-containers", type=int, default=None)
    scale.add_argument("--scaledown-window", type=int, default=None)
    args = parser.parse_args(argv)
    result = update_autoscaler(
        app_name=args.app,
        environment=args.env,
        min_containers=args.min_containers,
        max_containers=args.max_containers,
        buffer_containers=args.buffer_containers,
        scaledown_window=args.scaledown_window,
    )
    print(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
