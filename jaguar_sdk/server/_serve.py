"""Running the app with uvicorn: ``jaguar serve``."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from .. import _constants as C
from .._logging import get_logger
from ._app import create_app
from ._service import JaguarService

__all__ = ["serve", "start_loading", "uvicorn_options"]

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


def uvicorn_options(
    *,
    header_timeout_s: float = C.HEADER_TIMEOUT_S,
    max_connections: int | None = None,
) -> dict[str, Any]:
    """The ``uvicorn.Config`` settings of ``jaguar serve``: the hardened protocol and its limits.

    Args:
        header_timeout_s: Seconds a connection has to send a request's headers (408 after).
        max_connections: Connections open at once; ``None`` fits the open-file limit
            (:func:`jaguar_sdk.server._protocol.default_limits`).

    Returns:
        Keyword arguments for ``uvicorn.Config`` (or ``uvicorn.run``).

    Example:
        >>> uvicorn_options(header_timeout_s=5)["timeout_keep_alive"]
        5
    """
    from ._protocol import MAX_HEADER_BYTES, default_limits, hardened_protocol

    fitted, backlog = default_limits()
    return {
        "http": hardened_protocol(
            header_timeout_s=header_timeout_s, max_connections=max_connections or fitted
        ),
        "backlog": backlog,
        "h11_max_incomplete_event_size": MAX_HEADER_BYTES,  # 431 above it
        "timeout_keep_alive": 5,  # idle keep-alive connections close after 5 s
        "timeout_graceful_shutdown": 30,  # Ctrl-C never waits forever on a stuck request
        "server_header": False,
    }


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
    webhook_allow: Sequence[str] = (),
    header_timeout_s: float = C.HEADER_TIMEOUT_S,
    max_connections: int | None = None,
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
        webhook_allow: Networks (CIDR) webhooks may reach besides public addresses.
        header_timeout_s: Seconds a connection has to send a request's headers.
        max_connections: Connections open at once (default: fitted to the open-file limit).

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
    app = create_app(
        service,
        api_key=api_key,
        admin_key=admin_key,
        webhook_secret=webhook_secret,
        webhook_allow=webhook_allow,
    )
    start_loading(service)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_level=log_level,
            access_log=False,  # the app logs each request itself, with its request id
            **uvicorn_options(header_timeout_s=header_timeout_s, max_connections=max_connections),
        )
    finally:
        service.close()
