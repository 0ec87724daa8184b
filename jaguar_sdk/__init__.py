"""jaguar_sdk: Shuttle Jaguar text-to-image, on Modal, over HTTP or in-process.

Example:
    >>> from jaguar_sdk import JaguarClient
    >>> with JaguarClient.local(model="tiny") as client:  # doctest: +SKIP
    ...     client.generate("white cat holding a sign reading Scuffed").save("cat.jpg")

Importing this package is light: torch, diffusers, transformers, fastapi and modal are imported
only by the parts that use them (the engine, the server, the Modal transport).

The transport seam is public, as in httpx: a :class:`SyncTransport` or :class:`AsyncTransport`
takes a :class:`Call` and returns a :class:`Reply`; pass one as ``transport=`` to reach a
backend of your own. ``LocalTransport`` and ``ModalTransport`` (and their async twins) are
loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._async_client import AsyncJaguarClient
from ._async_job import AsyncJob
from ._client import JaguarClient
from ._exceptions import (
    APIStatusError,
    AuthenticationError,
    ClientSideError,
    ConfigurationError,
    GenerationError,
    IncompatibleVersionError,
    InvalidRequestError,
    JaguarConnectionError,
    JaguarError,
    JaguarTimeoutError,
    JobCancelledError,
    JobPendingError,
    NotFoundError,
    NotReadyError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    WebhookVerificationError,
)
from ._images import GeneratedImage
from ._job import Job
from ._lazy import lazy_exports
from ._request import (
    CallOptions,
    GenerateManyOptions,
    GenerateOptions,
    GenerateParams,
    GenerateRequest,
    LoraAdapter,
    SubmitOptions,
    validate_request,
)
from ._results import (
    GenerationResult,
    HealthStatus,
    JobStatus,
    ModelInfo,
    ModelRef,
    ProgressEvent,
    Timings,
)
from ._transports._base import AsyncTransport, Call, Reply, SyncTransport
from ._transports.http import AsyncHttpTransport, HttpTransport
from ._version import __version__

if TYPE_CHECKING:
    from ._transports.local import AsyncLocalTransport, LocalTransport
    from ._transports.modal import AsyncModalTransport, ModalTransport

__all__ = [
    "APIStatusError",
    "AsyncHttpTransport",
    "AsyncJaguarClient",
    "AsyncJob",
    "AsyncLocalTransport",
    "AsyncModalTransport",
    "AsyncTransport",
    "AuthenticationError",
    "Call",
    "CallOptions",
    "ClientSideError",
    "ConfigurationError",
    "GenerateManyOptions",
    "GenerateOptions",
    "GenerateParams",
    "GenerateRequest",
    "GeneratedImage",
    "GenerationError",
    "GenerationResult",
    "HealthStatus",
    "HttpTransport",
    "IncompatibleVersionError",
    "InvalidRequestError",
    "JaguarClient",
    "JaguarConnectionError",
    "JaguarError",
    "JaguarTimeoutError",
    "Job",
    "JobCancelledError",
    "JobPendingError",
    "JobStatus",
    "LocalTransport",
    "LoraAdapter",
    "ModalTransport",
    "ModelInfo",
    "ModelRef",
    "NotFoundError",
    "NotReadyError",
    "PermissionDeniedError",
    "ProgressEvent",
    "RateLimitError",
    "Reply",
    "ServerError",
    "SubmitOptions",
    "SyncTransport",
    "Timings",
    "WebhookVerificationError",
    "__version__",
    "validate_request",
]

_LAZY = {
    "LocalTransport": "._transports.local",
    "AsyncLocalTransport": "._transports.local",
    "ModalTransport": "._transports.modal",
    "AsyncModalTransport": "._transports.modal",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())
