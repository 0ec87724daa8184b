"""``jaguar serve``: run the HTTP server locally."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .. import _constants as C
from .._extras import require_extras

__all__ = ["ENV_SERVER_ADMIN_TOKEN", "ENV_SERVER_TOKEN", "ENV_WEBHOOK_SECRET", "register"]

#: Environment variable read for ``--token`` (keeps the token out of shell history and ``ps``).
ENV_SERVER_TOKEN = "JAGUAR_SERVER_TOKEN"
#: Environment variable read for ``--webhook-secret``.
ENV_WEBHOOK_SECRET = "JAGUAR_WEBHOOK_SECRET"
#: Environment variable read for ``--admin-token``.
ENV_SERVER_ADMIN_TOKEN = "JAGUAR_SERVER_ADMIN_TOKEN"


def register(subparsers: Any) -> None:
    """Add the ``serve`` sub-command.

    Args:
        subparsers: The root parser's sub-parsers action.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "serve",
        help="serve the model over HTTP (FastAPI + uvicorn)",
        description=(
            "Serve the model over HTTP. Binds 127.0.0.1 by default (this machine only); the "
            "model loads in the background while /v1/health answers 'loading'. Docs at /docs."
        ),
    )
    parser.add_argument(
        "--model",
        default=os.environ.get(C.ENV_MODEL, "tiny"),
        help="'tiny' (offline test model) or a path to a diffusers model folder "
        f"(default: ${C.ENV_MODEL} or 'tiny')",
    )
    parser.add_argument(
        "--host",
        default=C.DEFAULT_HOST,
        help=f"interface to bind (default {C.DEFAULT_HOST}; use 0.0.0.0 only behind a token)",
    )
    parser.add_argument("--port", type=int, default=C.DEFAULT_PORT, help="TCP port (default 8000)")
    parser.add_argument(
        "--token",
        default=None,
        help=f"bearer token required for generation and info (or set ${ENV_SERVER_TOKEN})",
    )
    parser.add_argument(
        "--admin-token",
        default=None,
        help="bearer token for admin routes such as reload (default: --token; or set "
        f"${ENV_SERVER_ADMIN_TOKEN}). With no token at all, admin routes are disabled.",
    )
    parser.add_argument(
        "--webhook-secret",
        default=None,
        help=f"HMAC secret that signs job webhooks (or set ${ENV_WEBHOOK_SECRET}); without "
        "one, jobs asking for a webhook are refused",
    )
    parser.add_argument(
        "--webhook-allow",
        action="append",
        default=[],
        metavar="CIDR",
        help="a network webhooks may reach besides public addresses, e.g. 10.0.0.0/8 or "
        "127.0.0.1/32 (repeat for several); internal addresses are refused otherwise",
    )
    parser.add_argument(
        "--header-timeout",
        type=float,
        default=C.HEADER_TIMEOUT_S,
        metavar="SECONDS",
        help=f"seconds a connection has to send a request's headers (default "
        f"{C.HEADER_TIMEOUT_S:g}; 408 after)",
    )
    parser.add_argument(
        "--max-connections",
        type=int,
        default=None,
        help="connections open at once (default: fitted to the open-file limit, at most 1000)",
    )
    parser.add_argument(
        "--device",
        choices=("cpu", "cuda"),
        default=None,
        help="where to run the model (default: cuda when available, else cpu)",
    )
    parser.add_argument(
        "--log-level",
        choices=("critical", "error", "warning", "info", "debug"),
        default="info",
        help="server log level (default info)",
    )
    parser.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    require_extras("server", "engine", what="`jaguar serve`")
    token = args.token or os.environ.get(ENV_SERVER_TOKEN) or None
    admin_token = args.admin_token or os.environ.get(ENV_SERVER_ADMIN_TOKEN) or None
    webhook_secret = args.webhook_secret or os.environ.get(ENV_WEBHOOK_SECRET) or None
    from .._logging import configure_logging
    from ..server import serve

    configure_logging(args.log_level if args.log_level in ("info", "debug") else None)
    auth = "token required" if token else "no token (open)"
    admin = "enabled" if (admin_token or token) else "disabled (no token)"
    print(
        f"jaguar serve: model {args.model!r} on http://{args.host}:{args.port} "
        f"[auth: {auth}; admin routes: {admin}]",
        file=sys.stderr,
    )
    if args.host not in ("127.0.0.1", "localhost", "::1") and not token:
        print(
            f"warning: binding {args.host} without a token lets anyone on the network generate; "
            f"pass --token or set {ENV_SERVER_TOKEN}.",
            file=sys.stderr,
        )
    # Only the options given travel, so the defaults stay in one place (serve's signature).
    options: dict[str, Any] = {}
    if webhook_secret:
        options["webhook_secret"] = webhook_secret
    if args.webhook_allow:
        options["webhook_allow"] = args.webhook_allow
    if args.header_timeout != C.HEADER_TIMEOUT_S:
        options["header_timeout_s"] = args.header_timeout
    if args.max_connections:
        options["max_connections"] = args.max_connections
    serve(
        args.model,
        host=args.host,
        port=args.port,
        api_key=token,
        admin_key=admin_token,
        device=args.device,
        log_level=args.log_level,
        **options,
    )
    return 0
