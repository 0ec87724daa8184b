"""Running the app with uvicorn: ``jaguar serve``."""

from __future__ import annotations

import threading

from .. import _constants as C
from .._logging import get_logger
from ._app import create_app
from ._service import JaguarService

__all__ = ["serve", "start_loading"]

logger = get_logger("jaguar_sdk.server")


def start_loading(service: JaguarService) -> threading.Thread:
    """Load the service's model in a background (daemon) thread.

    A failed load is logged and shows in ``/v1/health`` as ``"error"`` with its reason;
    ``POST /v1/admin/reload`` can retry it.

    Args:
        service: The service to start.

    Returns:
        The started thread.
    """

    def load() -> None:
        try:
            service.start()
        except Exception:  # already logged by the service with its traceback
            logger.error("the model failed to load; /v1/health reports why")
        else:
            logger.info("model loaded; the server is ready")

    thread = threading.Thread(target=load, name="jaguar-model-load", daemon=True)
    thread.start()
    return thread


def serve(
    model: str = "tiny",
    *,
    host: str = C.DEFAULT_HOST,
    port: int = C.DEFAULT_PORT,
    api_key: str | None = None,
    admin_key: str | None = None,
    device: str | None = None,
    log_level: str = "info",
    webhook_secret: str | None = None,
) -> None:
    """Serve a model over HTTP until interrupted.

    The server binds at once and loads the model in a background thread: ``/v1/health``
    answers ``"loading"`` straight away, ``/v1/ready`` and generation answer 503 with
    ``Retry-After`` until the model is in (the client retries those), so probes and clients see
    a clear state instead of "connection refused" during a minutes-long load.

    Args:
        model: ``"tiny"`` (the offline test model) or a path to a diffusers model folder.
        host: Interface to bind; the default 127.0.0.1 is reachable from this machine only.
        port: TCP port.
        api_key: Bearer token for generation and info routes.
        admin_key: Bearer token for admin routes (defaults to ``api_key``).
        device: ``"cuda"``, ``"cpu"`` or ``None`` for the engine's choice.
        log_level: uvicorn's log level.
        webhook_secret: HMAC secret for job webhooks (none: jobs with a webhook are refused).

    Raises:
        ConfigurationError: The ``server`` or ``engine`` extra is not installed (raised when
            ``serve`` is imported from :mod:`jaguar_sdk.server`).

    Example:
        >>> serve("tiny", port=8000, api_key="s3cret")  # doctest: +SKIP
    """
    import uvicorn

    from .._logging import configure_logging
    from ..engine import Engine
    from ..weights import AdapterStore

    configure_logging(log_level)  # our one line per request, with its request id

    # LoRA adapters: downloaded once into, or read from, the local weights folder.
    service = JaguarService(
        lambda: Engine.load(model, device=device, adapters=AdapterStore.local())
    )
    app = create_app(service, api_key=api_key, admin_key=admin_key, webhook_secret=webhook_secret)
    start_loading(service)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,  # the app logs each request itself, with its request id
            server_header=False,
        )
    finally:
        service.close()
