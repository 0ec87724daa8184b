"""Constants shared by every part of jaguar_sdk: wire version, headers, environment variables,
server and client defaults. The request's own fields and bounds live on the request model
(:mod:`jaguar_sdk._request`), nowhere else.
"""

from __future__ import annotations

from typing import Final

#: Version of the plain-data wire format (HTTP JSON and Modal method payloads).
#: Bumped on any incompatible change; both sides refuse a payload of another major version.
SCHEMA_VERSION: Final = 1

DEFAULT_MODEL_ID: Final = "shuttleai/shuttle-jaguar"
DEFAULT_PROMPT: Final = "white cat holding a sign reading Scuffed"

# --- server ---
DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8000
MAX_REQUEST_BODY_BYTES: Final = 64 * 1024
IDEMPOTENCY_TTL_S: Final = 600.0
IDEMPOTENCY_MAX_ENTRIES: Final = 256
#: Bytes of results (encoded images) the idempotency store keeps; the oldest go first.
IDEMPOTENCY_MAX_BYTES: Final = 256 * 1024 * 1024
#: Generations running at once on the HTTP server's own worker threads.
GENERATION_WORKERS: Final = 2
#: Generations waiting at once beyond those running; more are refused with 503 ``overloaded``.
MAX_QUEUED_GENERATIONS: Final = 64
#: Seconds a connection may take to send a request's headers (``jaguar serve``).
HEADER_TIMEOUT_S: Final = 10.0

# --- client ---
DEFAULT_CONNECT_TIMEOUT_S: Final = 10.0
DEFAULT_READ_TIMEOUT_S: Final = 300.0  # a cold start on Modal can take minutes
DEFAULT_MAX_RETRIES: Final = 2
RETRY_INITIAL_BACKOFF_S: Final = 0.5
RETRY_MAX_BACKOFF_S: Final = 8.0
RETRY_AFTER_CAP_S: Final = 60.0
RETRYABLE_STATUS_CODES: Final = frozenset({408, 429, 502, 503, 504})

# --- HTTP headers ---
HEADER_REQUEST_ID: Final = "X-Request-ID"
HEADER_IDEMPOTENCY_KEY: Final = "Idempotency-Key"
HEADER_SCHEMA_VERSION: Final = "X-Jaguar-Schema-Version"
HEADER_SEED: Final = "X-Jaguar-Seed"
HEADER_RESULT: Final = "X-Jaguar-Result"  # JSON metadata of a binary image response

# --- environment variables ---
ENV_BASE_URL: Final = "JAGUAR_BASE_URL"
ENV_API_KEY: Final = "JAGUAR_API_KEY"
ENV_MODEL: Final = "JAGUAR_MODEL"
ENV_MODAL_APP: Final = "JAGUAR_MODAL_APP"
ENV_MODAL_CLASS: Final = "JAGUAR_MODAL_CLASS"
ENV_MODAL_ENVIRONMENT: Final = "JAGUAR_MODAL_ENVIRONMENT"
ENV_TIMEOUT: Final = "JAGUAR_TIMEOUT"
ENV_MAX_RETRIES: Final = "JAGUAR_MAX_RETRIES"
ENV_CONFIG: Final = "JAGUAR_CONFIG"
ENV_LOG: Final = "JAGUAR_LOG"
ENV_CACHE_DIR: Final = "JAGUAR_CACHE_DIR"
#: The weights folder (the Volume mount on Modal); outside Modal it also holds LoRA adapters.
ENV_WEIGHTS_DIR: Final = "JAGUAR_WEIGHTS_DIR"

DEFAULT_MODAL_APP: Final = "shuttle-jaguar"
DEFAULT_MODAL_CLASS: Final = "JaguarModel"

# --- jobs and webhooks -----------------------------------------------------------------------
#: How long a finished job (and its result) is kept by ``jaguar serve``.
JOB_TTL_S: Final = 3600.0
#: Jobs kept at once (queued, running and finished); beyond it new jobs are refused with 429.
JOB_MAX_ENTRIES: Final = 256
#: Bytes of finished jobs' results the job store keeps; the oldest finished jobs go first.
JOB_MAX_BYTES: Final = 256 * 1024 * 1024
#: Longest ``?wait=`` a status call may ask for (a long-poll stays well under proxies' and
#: Modal's 150 s web-request limits).
JOB_WAIT_MAX_S: Final = 60.0
#: How long the client asks the server to hold one status call (``?wait=``).
JOB_LONG_POLL_S: Final = 20.0
#: Webhook signature headers (HMAC-SHA256 over ``timestamp + "." + body``).
HEADER_WEBHOOK_ID: Final = "Jaguar-Webhook-Id"
HEADER_WEBHOOK_TIMESTAMP: Final = "Jaguar-Webhook-Timestamp"
HEADER_WEBHOOK_SIGNATURE: Final = "Jaguar-Webhook-Signature"
#: Default age (seconds) beyond which a webhook is refused as a possible replay.
WEBHOOK_TOLERANCE_S: Final = 300.0
