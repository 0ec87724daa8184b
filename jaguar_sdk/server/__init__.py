"""The serving side: the service every front end calls, the job store and the HTTP app.

- :class:`JaguarService` (no extra needed): one model behind every front end (``jaguar serve``,
  the Modal class, the in-process client): lifecycle, reload, idempotency, jobs.
- :func:`create_app` / :func:`serve` (the ``server`` extra, ``pip install 'jaguar-sdk[server]'``;
  ``serve`` also needs ``engine``): the FastAPI app used by ``jaguar serve`` and by the Modal web
  endpoint, and uvicorn around it.

Names are loaded on first use, so ``from jaguar_sdk.server import JaguarService`` does not
import FastAPI; without the extra a name raises :class:`~jaguar_sdk.ConfigurationError` naming it.

Example:
    >>> from jaguar_sdk.server import serve
    >>> serve("tiny", port=8000)  # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._app import create_app
    from ._idempotency import IdempotencyStore, fingerprint, key_reused
    from ._job_routes import JobBackend, StoreJobBackend
    from ._job_store import JobStore
    from ._serve import serve
    from ._service import EngineLike, JaguarService, ProgressCallback, new_request_id

__all__ = [
    "EngineLike",
    "IdempotencyStore",
    "JaguarService",
    "JobBackend",
    "JobStore",
    "ProgressCallback",
    "StoreJobBackend",
    "create_app",
    "fingerprint",
    "key_reused",
    "new_request_id",
    "serve",
]

_WHERE = {
    "create_app": "._app",
    "serve": "._serve",
    "JobBackend": "._job_routes",
    "StoreJobBackend": "._job_routes",
    "JobStore": "._job_store",
    "IdempotencyStore": "._idempotency",
    "fingerprint": "._idempotency",
    "key_reused": "._idempotency",
    "JaguarService": "._service",
    "EngineLike": "._service",
    "ProgressCallback": "._service",
    "new_request_id": "._service",
}


# Checked up front, so one message names every extra missing (the rest name theirs on import).
_EXTRAS = {"create_app": ("server",), "serve": ("server", "engine")}

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals(), extras=_EXTRAS)
