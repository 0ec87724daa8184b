"""jaguar_sdk: Shuttle Jaguar text-to-image, on Modal, over HTTP or in-process.

Example:
    >>> from jaguar_sdk import JaguarClient
    >>> with JaguarClient.local(model="tiny") as client:  # doctest: +SKIP
    ...     client.generate("white cat holding a sign reading Scuffed").save("cat.jpg")

Importing this package is light: torch, diffusers, transformers, fastapi and modal are imported
only by the parts that use them (the engine, the server, the Modal transport).
"""

from ._client import AsyncJaguarClient, JaguarClient
from ._exceptions import (
    AuthenticationError,
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
from ._job_handles import AsyncJob, Job
from ._types import (
    GenerateRequest,
    GenerationResult,
    HealthStatus,
    JobStatus,
    ModelInfo,
    ModelRef,
    ProgressEvent,
    Timings,
    validate_request,
)
from ._version import __version__

__all__ = [
    "AsyncJaguarClient",
    "AsyncJob",
    "AuthenticationError",
    "ConfigurationError",
    "GenerateRequest",
    "GeneratedImage",
    "GenerationError",
    "GenerationResult",
    "HealthStatus",
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
    "ModelInfo",
    "ModelRef",
    "NotFoundError",
    "NotReadyError",
    "PermissionDeniedError",
    "ProgressEvent",
    "RateLimitError",
    "ServerError",
    "Timings",
    "WebhookVerificationError",
    "__version__",
    "validate_request",
]
