"""The Shuttle Jaguar Modal app: one GPU class behind a Python API and an HTTP API.

Deploy from the repository root (settings come from ``JAGUAR_*`` variables, see
``deploy/settings.py`` and ``docs/deploy.md``)::

    modal deploy deploy/app.py

Read top to bottom: settings -> image -> volume and secrets -> the ``JaguarModel`` class
(load weights to CPU before the memory snapshot, move to the GPU after restore, serve
``generate``/``info``/``health``/``reload`` as Modal methods and the FastAPI app as ``web``)
-> runtime autoscaling helper.

Importing this module needs neither a Modal token nor the network nor torch: Modal objects are
lazy, and the engine (torch, diffusers) is imported inside the container's lifecycle hooks.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import modal

if __package__ in (None, ""):  # `modal deploy deploy/app.py` imports this file as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deploy.settings import DeploySettings, DeploySettingsError
from jaguar_sdk._constants import DEFAULT_MODAL_CLASS

if TYPE_CHECKING:
    from jaguar_sdk._results import ModelInfo
    from jaguar_sdk.engine import Engine
    from jaguar_sdk.server._service import EngineLike, JaguarService
    from jaguar_sdk.weights import EnsureResult, Fetcher, UpdateChecker, WeightStore

__all__ = [
    "CLASS_NAME",
    "WEIGHTS_MOUNT",
    "JaguarModel",
    "app",
    "build_app",
    "build_image",
    "cls_options",
    "fetcher_factory",
    "settings",
    "update_autoscaler",
]

logger = logging.getLogger("jaguar_sdk.deploy")

#: The class name clients look up (``JaguarClient.from_modal(app, "JaguarModel")``). Stable.
CLASS_NAME = DEFAULT_MODAL_CLASS
#: Where the weights Volume is mounted in the container.
WEIGHTS_MOUNT = "/weights"
#: Overrides the weights folder (tests point it at a temporary folder; unset on Modal).
ENV_WEIGHTS_DIR = "JAGUAR_WEIGHTS_DIR"

# --- settings ---------------------------------------------------------------------------------
settings = DeploySettings.from_env()

# Whether the lifecycle hooks split around a memory snapshot. Modal refuses `snap=True` hooks on
# a class without `enable_memory_snapshot`, so this is fixed when the module is imported.
_SNAP = settings.snapshot != "off"
# Likewise `requires_proxy_auth` of the web endpoint.
_PROXY_AUTH = settings.web_auth == "proxy"

# --- image ------------------------------------------------------------------------------------
# PyPI's Linux x86_64 torch wheels are CUDA builds (they pull the nvidia-* runtime wheels), so
# the same torch==2.13.0 that the dev machines run as a CPU wheel runs on Modal's GPUs. The rest
# is pinned to the versions the engine and server are tested with.
ENGINE_PACKAGES: tuple[str, ...] = (
    "torch==2.13.0",
    "diffusers==0.42.1",
    "transformers==5.23.0",
    "accelerate==1.15.0",
    "safetensors==0.8.0",
    "huggingface_hub==2.4.0",
    "hf_xet==1.8.0",
    "numpy==2.4.6",
    "tqdm==4.70.1",
)
SERVER_PACKAGES: tuple[str, ...] = (
    "fastapi==0.165.0",
    "uvicorn==0.54.0",
    "httpx==0.28.1",
    "pydantic==2.14.3",
    "tenacity==9.2.1",
    "pillow==13.0.0",
)


#: Added to the image only with JAGUAR_FP8=true (not verified against torch 2.13 on a GPU here).
FP8_PACKAGES: tuple[str, ...] = ("torchao==0.18.0",)


def build_image(s: DeploySettings) -> modal.Image:
    """The container image: pinned engine + server packages, then the local sources.

    The deploy settings are baked into the image environment, so the container reads the same
    ``DeploySettings`` as the machine that deployed it.

    Args:
        s: The deploy settings.

    Returns:
        The (lazy) image.
    """
    env = {
        "HF_XET_HIGH_PERFORMANCE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        # torch.compile artifacts persist on the Volume (committed after warm-up).
        "TORCHINDUCTOR_CACHE_DIR": f"{WEIGHTS_MOUNT}/.compile-cache/inductor",
        "TRITON_CACHE_DIR": f"{WEIGHTS_MOUNT}/.compile-cache/triton",
        **s.to_env(),
    }
    if s.snapshot == "gpu":
        env["TORCHINDUCTOR_COMPILE_THREADS"] = "1"  # GPU snapshots can fail with compile threads
    return (
        modal.Image.debian_slim(python_version="3.11")
        .uv_pip_install(*ENGINE_PACKAGES, *SERVER_PACKAGES, *(FP8_PACKAGES if s.fp8 else ()))
        .env(env)
        .add_local_python_source("jaguar_sdk", "deploy")
    )


def _secrets(s: DeploySettings) -> list[modal.Secret]:
    out: list[modal.Secret] = []
    if s.hf_secret:
        out.append(modal.Secret.from_name(s.hf_secret))  # HF_TOKEN, for gated/private repos
    if s.web_auth == "token":
        out.append(modal.Secret.from_name(s.token_secret))  # JAGUAR_SERVER_TOKEN
    return out


def cls_options(s: DeploySettings, image: modal.Image, volume: modal.Volume) -> dict[str, Any]:
    """The ``@app.cls(...)`` keyword arguments for these settings.

    Args:
        s: The deploy settings.
        image: The container image.
        volume: The weights Volume.

    Returns:
        Keyword arguments for ``app.cls``.
    """
    options: dict[str, Any] = {
        "image": image,
        "gpu": s.gpu,
        "volumes": {WEIGHTS_MOUNT: volume},
        "secrets": _secrets(s),
        "timeout": s.timeout_s,
        "scaledown_window": s.scaledown_window_s,
        "min_containers": s.min_containers,
        "buffer_containers": s.buffer_containers,
        "max_containers": s.max_containers,
        "memory": s.memory_mb,
        "enable_memory_snapshot": s.snapshot != "off",
    }
    if s.snapshot == "gpu":
        options["experimental_options"] = {"enable_gpu_snapshot": True}
    return options


# --- runtime helpers (run in the container, or in-process under `.local()` in tests) ---------
def _default_fetcher() -> Fetcher:
    from jaguar_sdk.weights import HubFetcher

    return HubFetcher()


#: Makes the fetcher that downloads missing weights. The Hub on Modal; tests swap in a
#: ``LocalFolderFetcher`` over a fake hub.
fetcher_factory: Callable[[], Fetcher] = _default_fetcher

#: How long model info reuses the upstream answer of its update check (one Hub request per
#: container per period; a failed request is retried after a minute).
UPDATE_CHECK_TTL_S = 15 * 60.0


def _volume_hooks(volume: modal.Volume) -> tuple[Callable[[], None], Callable[[], None]]:
    """``Volume.commit``/``Volume.reload`` inside a Modal container; no-ops elsewhere."""
    if modal.is_local() or os.environ.get(ENV_WEIGHTS_DIR):

        def noop() -> None:
            return None

        return noop, noop
    return volume.commit, volume.reload


# --- app --------------------------------------------------------------------------------------
class JaguarModel:
    """Shuttle Jaguar on one GPU container.

    Modal methods (called with ``JaguarClient.from_modal(...)``, i.e. ``Cls.from_name`` +
    ``.remote``/``.spawn``) take and return plain dicts with a ``schema_version``; failures come
    back as ``{"schema_version": 1, "error": {...}}``, never as pickled exceptions. Calling them
    needs the caller's Modal token, so they are authenticated by Modal itself; ``reload`` is as
    reachable as ``generate`` for anyone who holds a token for this workspace. The HTTP app
    (``web``) checks a bearer token (or Modal proxy auth) and always authenticates admin routes.
    """

    _service: JaguarService
    _engine: Engine
    _settings: DeploySettings
    _source: str
    _load_timings: dict[str, float]
    _update_checker: UpdateChecker

    # --- lifecycle ----------------------------------------------------------------------------
    @modal.enter(snap=_SNAP)
    def load_to_cpu(self) -> None:
        """Before the snapshot: make sure the weights are on the Volume, load them to host RAM.

        With GPU snapshots the model goes straight to the GPU and is warmed up here, so the
        snapshot holds the ready GPU state.
        """
        from jaguar_sdk.server._service import JaguarService

        self._settings = DeploySettings.from_env()
        self._load_timings = {}
        self._engine = self._build_engine(force=False, device_now=self._settings.snapshot == "gpu")
        self._update_checker = self._new_update_checker()
        self._service = JaguarService(
            lambda: self._engine, reloader=self._reload_engine, info_extras=self._info_extras
        )

    @modal.enter(snap=False)
    def to_gpu(self) -> None:
        """After restore: move to the GPU (CPU when there is none), compile if asked, warm up."""
        if self._settings.snapshot != "gpu":
            self._to_device(self._engine)
        self._service.start()

    @modal.exit()
    def release(self) -> None:
        """At shutdown (30 s grace): release the engine."""
        service = getattr(self, "_service", None)
        if service is not None:
            service.close()

    def _new_update_checker(self) -> UpdateChecker:
        from jaguar_sdk.weights import UpdateChecker, followed_branch

        s = self._settings
        # `fetcher_factory` is looked up when a check runs (tests swap it), never at info time
        # while the cached answer is fresh.
        return UpdateChecker(
            s.model_id,
            followed_branch(s.model_revision),
            lambda: fetcher_factory(),
            ttl_s=UPDATE_CHECK_TTL_S,
        )

    def _info_extras(self, info: ModelInfo) -> dict[str, Any]:
        """``update_check`` for model info: the serving revision against the followed branch
        upstream (cached for ``UPDATE_CHECK_TTL_S``; a Hub error is reported, never raised)."""
        return {"update_check": self._update_checker.check(info.model.revision)}

    def _store(self) -> WeightStore:
        from jaguar_sdk.weights import WeightStore

        root = Path(os.environ.get(ENV_WEIGHTS_DIR) or WEIGHTS_MOUNT)
        commit, reload = _volume_hooks(volume)
        return WeightStore(root, commit=commit, reload=reload)

    def _ensure(self, *, force: bool) -> EnsureResult:
        s = self._settings
        started = time.perf_counter()
        # The revision `jaguar model update` made CURRENT, unless a commit is pinned.
        got: EnsureResult = self._store().ensure_current(
            s.model_id, s.model_revision, fetch=fetcher_factory(), force=force
        )
        self._load_timings["ensure_s"] = time.perf_counter() - started
        logger.info("weights %s@%s from %s: %s", s.model_id, got.revision, got.source, got.path)
        return got

    def _build_engine(self, *, force: bool, device_now: bool) -> Engine:
        from jaguar_sdk._results import ModelRef
        from jaguar_sdk.engine import Engine

        got = self._ensure(force=force)
        self._source = got.source
        ref = ModelRef(id=self._settings.model_id, revision=got.revision, source=got.source)
        # On Modal there is always a GPU, but none is visible before a CPU snapshot: name the
        # dtype instead of letting the engine pick float32 for "no CUDA" (2x the memory).
        dtype = None if modal.is_local() else "bfloat16"
        engine = Engine.load_to_cpu(got.path, dtype=dtype, model_ref=ref)
        if device_now:
            self._to_device(engine)
        return engine

    def _to_device(self, engine: Engine) -> None:
        started = time.perf_counter()
        s = self._settings
        # (compile caches: TORCHINDUCTOR_CACHE_DIR/TRITON_CACHE_DIR point at the Volume, image env)
        # cuda where available (always on Modal); CPU under `.local()` in tests.
        engine.to_device(None, compile=s.compile, fp8=s.fp8)
        engine.warmup()
        self._load_timings["to_device_warmup_s"] = time.perf_counter() - started
        if self._settings.compile:
            commit, _ = _volume_hooks(volume)
            commit()  # keep the compile caches for the next container

    def _reload_engine(self) -> EngineLike:
        """Force a verify-or-download, then load a fresh engine; requests keep being served by
        the old one until this returns (the service swaps them)."""
        return self._build_engine(force=True, device_now=True)

    # --- Modal methods (plain data in, plain data out) -----------------------------------------
    def _call(self, operation: str, payload: dict[str, Any] | None) -> dict[str, Any]:
        out = self._service.call_plain(operation, payload)
        if operation == "info" and "error" not in out and isinstance(out.get("extra"), dict):
            s = self._settings
            out["extra"].update(
                {
                    "gpu": s.gpu,
                    "snapshot": s.snapshot,
                    "compile": s.compile,
                    "fp8": s.fp8,
                    "app": s.app_name,
                    "store_timings": dict(self._load_timings),
                }
            )
        return out

    @modal.method()
    def generate(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Generate images.

        Args:
            payload: ``{"schema_version": 1, "request": {...GenerateRequest fields...},
                "request_id": str | None, "idempotency_key": str | None}``.

        Returns:
            ``GenerationResult.model_dump()`` (image bytes raw), or an error envelope.
        """
        return self._call("generate", payload)

    @modal.method()
    def info(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """What is served: ``ModelInfo.model_dump()`` plus deployment details in ``extra``."""
        return self._call("info", payload)

    @modal.method()
    def health(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """``HealthStatus.model_dump()``; never an error."""
        return self._call("health", payload)

    @modal.method()
    def reload(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """Re-verify every weight file (sha256), re-download if that fails, swap the engine.

        Only the container that runs the call reloads; others keep their engine until they
        restart. Authenticated by the caller's Modal token (the HTTP route needs the admin token).

        Returns:
            The new ``ModelInfo.model_dump()``, or an error envelope.
        """
        return self._call("reload", payload)

    @modal.asgi_app(requires_proxy_auth=_PROXY_AUTH)
    def web(self) -> Any:
        """The same FastAPI app as ``jaguar serve``, over this container's service.

        With ``JAGUAR_WEB_AUTH=token`` every route needs ``Authorization: Bearer
        $JAGUAR_SERVER_TOKEN`` (admin routes ``JAGUAR_ADMIN_TOKEN`` where set, else the same
        token). With ``proxy`` Modal checks ``Modal-Key``/``Modal-Secret`` before the request
        reaches the container, and the admin routes answer 403 unless ``JAGUAR_ADMIN_TOKEN`` is
        set in a secret.
        """
        from jaguar_sdk.server import create_app

        api_key: str | None = None
        if self._settings.web_auth == "token":
            api_key = os.environ.get("JAGUAR_SERVER_TOKEN") or None
            if api_key is None:
                raise RuntimeError(
                    "JAGUAR_WEB_AUTH=token but JAGUAR_SERVER_TOKEN is not set: create it with "
                    f"`modal secret create {self._settings.token_secret} JAGUAR_SERVER_TOKEN=...`"
                )
        admin_key = os.environ.get("JAGUAR_ADMIN_TOKEN") or api_key
        # Job routes spawn the class method (deploy/jobs.py): a job outlives the web request
        # and any container can answer for it by its FunctionCall id.
        from deploy.jobs import ModalJobBackend

        return create_app(
            self._service,
            api_key=api_key,
            admin_key=admin_key,
            webhook_secret=os.environ.get("JAGUAR_WEBHOOK_SECRET") or None,
            job_backend=ModalJobBackend(self._settings.app_name, CLASS_NAME),
        )


_JaguarModelDef = JaguarModel


def build_app(
    s: DeploySettings, *, weights_volume: modal.Volume | None = None
) -> tuple[modal.App, type[JaguarModel]]:
    """Build the Modal app and the ``JaguarModel`` class for these settings.

    ``modal deploy deploy/app.py`` uses the module-level ``app`` built from the environment; tests
    call this with other settings and read the result back from Modal's objects.

    Args:
        s: The deploy settings.
        weights_volume: The weights Volume; looked up by ``s.volume_name`` when omitted.

    Returns:
        The app and its class.

    Raises:
        DeploySettingsError: When ``s`` differs from the settings this module was imported with
            in what Modal fixes at class definition: snapshots on/off (the hooks' ``snap``
            flags) and the web auth mode (``requires_proxy_auth``).
    """
    for name, fixed in (("snapshot", _SNAP), ("web_auth", _PROXY_AUTH)):
        now = (s.snapshot != "off") if name == "snapshot" else (s.web_auth == "proxy")
        if now != fixed:
            var = DeploySettings.ENV_NAMES[name]
            raise DeploySettingsError(
                f"{var}={getattr(s, name)!r}: this is fixed when deploy.app is imported "
                f"(imported with {getattr(settings, name)!r}); set {var} before importing"
            )
    new_app = modal.App(s.app_name)
    vol = weights_volume or modal.Volume.from_name(s.volume_name, create_if_missing=True)
    model_cls = new_app.cls(**cls_options(s, build_image(s), vol))(_JaguarModelDef)
    return new_app, model_cls


#: The weights Volume (Modal hydrates it in the container; `commit`/`reload` are used there).
volume = modal.Volume.from_name(settings.volume_name, create_if_missing=True)
app, JaguarModel = build_app(settings, weights_volume=volume)  # type: ignore[misc]


# --- runtime autoscaling ----------------------------------------------------------------------
def update_autoscaler(
    *,
    app_name: str | None = None,
    environment: str | None = None,
    min_containers: int | None = None,
    max_containers: int | None = None,
    buffer_containers: int | None = None,
    scaledown_window: int | None = None,
) -> Any:
    """Change the deployed class's autoscaling now, without redeploying (reverted on redeploy).

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
