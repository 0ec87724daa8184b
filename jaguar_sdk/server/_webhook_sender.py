"""Posting signed webhooks of finished jobs, off the GPU worker's thread.

Deliveries run concurrently on a small pool (``max_concurrent``), at most ``per_receiver`` at a
time to one receiver (scheme, host and port), and a failed attempt is rescheduled rather than
slept on, so a receiver that never answers holds at most ``per_receiver`` workers for at most
``timeout_s`` each, and never delays another receiver's webhooks. Connections go through a
:class:`~jaguar_sdk.server._webhook_policy.GuardedTransport`, which refuses internal addresses
when it connects. Every outcome is logged and reported to the job (``JobStatus.webhook``).
"""

from __future__ import annotations

import heapq
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from .._logging import get_logger
from .._results import GenerationResult, JobStatus, WebhookDelivery
from ..webhooks import sign_headers, split_webhook_url
from ._webhook_policy import GuardedTransport, WebhookPolicy, WebhookRefused

__all__ = ["DeliveryReport", "HttpWebhookSender", "webhook_body"]

logger = get_logger("jaguar_sdk.webhooks")

#: Called with (job id, delivery state) after every attempt.
DeliveryReport = Callable[[str, WebhookDelivery], None]


def webhook_body(status: JobStatus, result: GenerationResult | None) -> bytes:
    """The JSON posted for a finished job.

    Returns:
        ``{"type": "job.<state>", "job": <JobStatus>, "result": <GenerationResult or null>}``
        (images base64-encoded, as in ``/v1/generate``'s JSON answer).
    """
    document = {
        "type": f"job.{status.state}",
        "job": json.loads(status.model_dump_json(exclude={"webhook"})),
        "result": json.loads(result.model_dump_json()) if result is not None else None,
    }
    return json.dumps(document, separators=(",", ":")).encode("utf-8")


@dataclass(order=True)
class _Delivery:
    due: float
    seq: int
    url: str = field(compare=False)
    receiver: str = field(compare=False)
    body: bytes = field(compare=False)
    job_id: str = field(compare=False)
    attempt: int = field(default=1, compare=False)


class HttpWebhookSender:
    """Posts signed webhooks concurrently, retrying failures with backoff.

    Args:
        secret: The shared HMAC secret.
        attempts: Tries per delivery (any 2xx answer ends them; a refused address, a redirect
            or a 4xx other than 408/429 ends them too).
        timeout_s: Seconds per try.
        backoff_s: Wait before the second try; doubled for each further one.
        policy: Where webhooks may connect (default: public addresses only).
        report: Called with (job id, :class:`~jaguar_sdk.WebhookDelivery`) after each attempt.
        max_concurrent: Deliveries in flight at once.
        per_receiver: Deliveries in flight at once to one receiver.
        max_pending: Deliveries waiting at once; beyond it a new one fails at once (logged).

    Example:
        >>> sender = HttpWebhookSender("s3cret")            # doctest: +SKIP
        >>> service.jobs.webhook_sender = sender            # doctest: +SKIP
    """

    def __init__(
        self,
        secret: str,
        *,
        attempts: int = 3,
        timeout_s: float = 10.0,
        backoff_s: float = 0.5,
        policy: WebhookPolicy | None = None,
        report: DeliveryReport | None = None,
        max_concurrent: int = 8,
        per_receiver: int = 2,
        max_pending: int = 1000,
    ) -> None:
        self._secret = secret
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._report = report
        self._max_concurrent = max_concurrent
        self._per_receiver = per_receiver
        self._max_pending = max_pending
        self._client = httpx.Client(
            transport=GuardedTransport(policy or WebhookPolicy(), max_connections=max_concurrent),
            timeout=timeout_s,
            follow_redirects=False,
            trust_env=False,
        )
        self._pool = ThreadPoolExecutor(max_concurrent, thread_name_prefix="jaguar-webhooks")
        self._cv = threading.Condition()
        self._waiting: list[_Delivery] = []  # a heap, soonest first
        self._busy: Counter[str] = Counter()
        self._running = 0
        self._seq = itertools.count()
        self._closed = False
        self._dispatcher: threading.Thread | None = None

    def __repr__(self) -> str:  # never show the secret
        return f"HttpWebhookSender(attempts={self._attempts})"

    def __call__(self, url: str, status: JobStatus, result: GenerationResult | None) -> None:
        """Queue one delivery; returns at once."""
        parts = split_webhook_url(url)
        receiver = f"{parts.scheme}://{parts.hostname}:{parts.port or ''}"
        delivery = _Delivery(
            due=time.monotonic(),
            seq=next(self._seq),
            url=url,
            receiver=receiver,
            body=webhook_body(status, result),
            job_id=status.id,
        )
        with self._cv:
            full = len(self._waiting) >= self._max_pending
            if not full:
                heapq.heappush(self._waiting, delivery)
                self._ensure_dispatcher()
                self._cv.notify_all()
        if full:
            delivery.attempt = 0
            self._finish(delivery, ok=False, why="too many webhooks waiting; dropped")

    def _ensure_dispatcher(self) -> None:
        if self._dispatcher is None or not self._dispatcher.is_alive():
            self._dispatcher = threading.Thread(
                target=self._dispatch, name="jaguar-webhook-dispatch", daemon=True
            )
            self._dispatcher.start()

    def _next_ready(self, now: float) -> _Delivery | None:
        """The soonest due delivery whose receiver has room (caller holds the lock)."""
        if self._running >= self._max_concurrent:
            return None
        for delivery in sorted(self._waiting):
            if delivery.due > now:
                return None
            if self._busy[delivery.receiver] < self._per_receiver:
                self._waiting.remove(delivery)
                heapq.heapify(self._waiting)
                return delivery
        return None

    def _dispatch(self) -> None:
        with self._cv:
            while not self._closed:
                now = time.monotonic()
                delivery = self._next_ready(now)
                if delivery is None:
                    future_due = [d.due for d in self._waiting if d.due > now]
                    self._cv.wait(min(future_due) - now if future_due else None)
                    continue
                self._busy[delivery.receiver] += 1
                self._running += 1
                self._pool.submit(self._attempt, delivery)

    def _attempt(self, delivery: _Delivery) -> None:
        ok, why, final = self._post(delivery)
        with self._cv:
            self._busy[delivery.receiver] -= 1
            self._running -= 1
            retry = not ok and not final and delivery.attempt < self._attempts
            if retry:
                wait = self._backoff_s * 2 ** (delivery.attempt - 1)
                delivery.due = time.monotonic() + wait
                delivery.attempt += 1
                heapq.heappush(self._waiting, delivery)
            self._cv.notify_all()
        if retry:
            logger.warning(
                "webhook for job %s to %s, attempt %d of %d failed: %s; retrying",
                delivery.job_id,
                delivery.receiver,
                delivery.attempt - 1,
                self._attempts,
                why,
            )
            self._emit(delivery.job_id, "pending", delivery.attempt - 1, why)
        else:
            self._finish(delivery, ok=ok, why=why)

    def _post(self, delivery: _Delivery) -> tuple[bool, str | None, bool]:
        """One attempt: (delivered, why not, whether that is final)."""
        headers = {"Content-Type": "application/json", "User-Agent": "jaguar-webhooks"}
        headers.update(sign_headers(delivery.body, self._secret))
        try:
            response = self._client.post(delivery.url, content=delivery.body, headers=headers)
        except httpx.HTTPError as exc:
            refused = isinstance(exc.__cause__, WebhookRefused)
            return False, f"{type(exc).__name__}: {exc}", refused
        if response.is_success:
            return True, None, True
        status = response.status_code
        final = 300 <= status < 500 and status not in (408, 429)
        return False, f"HTTP {status}", final

    def _finish(self, delivery: _Delivery, *, ok: bool, why: str | None) -> None:
        if ok:
            logger.info("webhook for job %s delivered to %s", delivery.job_id, delivery.receiver)
        else:
            logger.warning(
                "webhook for job %s to %s failed after %d attempt(s): %s",
                delivery.job_id,
                delivery.receiver,
                delivery.attempt,
                why,
            )
        self._emit(delivery.job_id, "delivered" if ok else "failed", delivery.attempt, why)

    def _emit(self, job_id: str, state: str, attempts: int, why: str | None) -> None:
        if self._report is None:
            return
        try:
            self._report(
                job_id,
                WebhookDelivery(state=state, attempts=attempts, last_error=why),  # type: ignore[arg-type]
            )
        except Exception:  # a report never breaks delivery
            logger.exception("recording the webhook outcome of job %s failed", job_id)

    def close(self) -> None:
        """Stop dispatching; deliveries in flight finish, waiting ones are dropped."""
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._pool.shutdown(wait=False)
        self._client.close()
