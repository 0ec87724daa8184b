"""Posting signed webhooks of finished jobs, off the GPU worker's thread."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from .._logging import get_logger
from .._results import GenerationResult, JobStatus
from ..webhooks import sign_headers

__all__ = ["HttpWebhookSender", "webhook_body"]

logger = get_logger("jaguar_sdk.webhooks")


def webhook_body(status: JobStatus, result: GenerationResult | None) -> bytes:
    """The JSON posted for a finished job.

    Returns:
        ``{"type": "job.<state>", "job": <JobStatus>, "result": <GenerationResult or null>}``
        (images base64-encoded, as in ``/v1/generate``'s JSON answer).
    """
    document = {
        "type": f"job.{status.state}",
        "job": json.loads(status.model_dump_json()),
        "result": json.loads(result.model_dump_json()) if result is not None else None,
    }
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


class HttpWebhookSender:
    """Posts signed webhooks from one background thread, retrying failures with backoff.

    Args:
        secret: The shared HMAC secret.
        attempts: Tries per delivery (any 2xx answer ends them).
        timeout_s: Seconds per try.
        backoff_s: Wait before the second try; doubled for each further one.

    Example:
        >>> sender = HttpWebhookSender("s3cret")            # doctest: +SKIP
        >>> service.jobs.webhook_sender = sender            # doctest: +SKIP
    """

    def __init__(
        self, secret: str, *, attempts: int = 3, timeout_s: float = 10.0, backoff_s: float = 0.5
    ) -> None:
        self._secret = secret
        self._attempts = attempts
        self._timeout_s = timeout_s
        self._backoff_s = backoff_s
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="jaguar-webhooks")

    def __repr__(self) -> str:  # never show the secret
        return f"HttpWebhookSender(attempts={self._attempts})"

    def __call__(self, url: str, status: JobStatus, result: GenerationResult | None) -> None:
        """Queue one delivery; returns at once."""
        self._pool.submit(self._deliver, url, webhook_body(status, result), status.id)

    def _deliver(self, url: str, body: bytes, job_id: str) -> bool:
        headers = {"Content-Type": "application/json", "User-Agent": "jaguar-webhooks"}
        headers.update(sign_headers(body, self._secret))
        for attempt in range(1, self._attempts + 1):
            try:
                response = httpx.post(url, content=body, headers=headers, timeout=self._timeout_s)
                if response.is_success:
                    return True
                why = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                why = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "webhook for job %s, attempt %d of %d failed: %s",
                job_id,
                attempt,
                self._attempts,
                why,
            )
            if attempt < self._attempts:
                time.sleep(self._backoff_s * 2 ** (attempt - 1))
        return False

    def close(self) -> None:
        """Stop after the queued deliveries."""
        self._pool.shutdown(wait=False)
