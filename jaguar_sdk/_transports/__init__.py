"""Transports: the ways a client reaches a model (HTTP, in-process, Modal).

Each one implements :class:`SyncTransport` or :class:`AsyncTransport` from ``_base``; everything
else (validation, retries, deadlines, parsing) is the shared core's. The Modal transport lives in
``jaguar_sdk._transports.modal`` and is imported only when used, so ``modal`` stays optional.
"""

from ._base import AsyncTransport, Call, Operation, Reply, SyncTransport
from .http import AsyncHttpTransport, HttpTransport
from .local import AsyncLocalTransport, LocalTransport

__all__ = [
    "AsyncHttpTransport",
    "AsyncLocalTransport",
    "AsyncTransport",
    "Call",
    "HttpTransport",
    "LocalTransport",
    "Operation",
    "Reply",
    "SyncTransport",
]
