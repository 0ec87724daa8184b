"""The sans-IO core shared by :class:`JaguarClient` and :class:`AsyncJaguarClient`.

Everything a client does except waiting on I/O lives here, once:

- resolving the configuration and building the transport (:class:`ClientCore`),
- validating user arguments into a :class:`~jaguar_sdk._transports._base.Call` before any
  network (:meth:`ClientCore.plan_generate`, :meth:`ClientCore.plan_simple`),
- the retry policy as tenacity pieces (:class:`RetryPolicy`), driven by ``tenacity.Retrying``
  in the sync client and ``tenacity.AsyncRetrying`` in the async one,
- parsing a :class:`~jaguar_sdk._transports._base.Reply` into a result model or an error
  (:func:`parse_reply`),
- normalising the items of ``generate_many`` and the optional progress bar.

The two clients are thin shells: they call ``plan_*``, run ``transport.send`` (or ``await`` it)
under the policy, and hand the reply to ``parse``.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
import os
import random
import threading
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, cast

from pydantic import ValidationError

from . import _constants as C
from ._config import ResolvedConfig, resolve_config
from ._exceptions import (
    ConfigurationError,
    InvalidRequestError,
    JaguarConnectionError,
    JaguarError,
    JaguarTimeoutError,
    NotReadyError,
    RateLimitError,
    ServerError,
)
from ._extras import import_extra, require_extras
from ._logging import RedactingFilter, get_logger
from ._operations import OPERATIONS, Operation, ResultModel
from ._request import PARAM_NAMES, GenerateRequest, validate_request
from ._results import (
    ProgressEvent,
    check_schema_version,
)
from ._transports._base import AsyncTransport, Call, Reply, SyncTransport
from .webhooks import split_webhook_url

if TYPE_CHECKING:
    import httpx
    from tenacity import RetryCallState

__all__ = [
    "CALL_OPTION_NAMES",
    "ClientCore",
    "Flavour",
    "ManyItem",
    "ManyPlan",
    "Plan",
    "ProgressBar",
    "RetryPolicy",
    "is_retryable",
    "parse_reply",
]

logger = get_logger("jaguar_sdk.client")
logger.addFilter(RedactingFilter())

Flavour = Literal["sync", "async"]
AnyTransport = SyncTransport | AsyncTransport
#: One item of ``generate_many``: a prompt, a request, or a dict of request fields.
ManyItem = str | GenerateRequest | Mapping[str, Any]

#: Per-call options accepted by every operation (and by ``generate_many``).
CALL_OPTION_NAMES: frozenset[str] = frozenset({"timeout", "deadline", "max_retries"})
#: Per-call ids of one logical request (``generate`` and ``submit`` only).
ID_OPTION_NAMES: frozenset[str] = frozenset({"request_id", "idempotency_key"})

#: Transports that run jobs (``submit`` and the ``job_*`` operations).
JOB_TRANSPORTS: frozenset[str] = frozenset({"http", "modal", "local"})

#: An attempt is not started with less time than this left before the deadline.
MIN_ATTEMPT_S = 0.05


# --- plans -----------------------------------------------------------------------------------
@dataclass
class Plan:
    """One logical call: the :class:`Call` sent on every attempt plus its retry budget.

    Attributes:
        call: What the transport sends (same idempotency key on every attempt).
        max_retries: Retries allowed after the first attempt.
        deadline_s: The total deadline in seconds as the caller gave it, for messages.
        started: ``time.monotonic()`` when the call began.
        attempts_before: Attempts made before tenacity took over (the first one).
    """

    call: Call
    max_retries: int
    deadline_s: float | None = None
    started: float = field(default_factory=time.monotonic)
    attempts_before: int = 0

    @property
    def operation(self) -> Operation:
        """What the call does."""
        return self.call.operation


@dataclass
class ManyPlan:
    """A validated batch of ``generate_many``/``generate_iter``.

    Attributes:
        items: One request per item, or the item's validation error in its place.
        call_options: ``timeout``, ``deadline``, ``max_retries`` for every item.
        jobs: Whether items run as jobs (else direct ``generate`` calls).
        fall_back: Whether a server without the job routes (404) is then called directly.
        wait_s: On jobs: how long an item waits for its job (``None``: no limit).
        concurrency: Items in flight at once.
    """

    items: list[GenerateRequest | InvalidRequestError]
    call_options: dict[str, Any]
    jobs: bool
    fall_back: bool
    wait_s: float | None
    concurrency: int


# --- retry policy ----------------------------------------------------------------------------
def is_retryable(exc: BaseException) -> bool:
    """Whether a failed attempt may be retried.

    Retried: connection failures, a single attempt's timeout (not the call's deadline), rate
    limiting (429), the model loading (503) and gateway errors (502/503/504). Never retried:
    invalid requests, authentication, generation failures, 500s, configuration errors.

    Args:
        exc: The exception an attempt raised.

    Returns:
        ``True`` if another attempt may succeed.
    """
    if isinstance(exc, JaguarTimeoutError):
        return exc.code != "deadline_exceeded"
    if isinstance(exc, (JaguarConnectionError, RateLimitError, NotReadyError)):
        return True
    if isinstance(exc, ServerError):
        return exc.status_code in (502, 503, 504)
    return False


def _plan_of(state: RetryCallState) -> Plan:
    plan = state.args[0]
    assert isinstance(plan, Plan)
    return plan


def _attempt(state: RetryCallState) -> int:
    """The attempt's number, counting those made before tenacity took over (the clients run
    the first attempt of every call outside it: see :meth:`RetryPolicy.after_first_attempt`)."""
    plan = state.args[0] if state.args else None
    return state.attempt_number + (plan.attempts_before if isinstance(plan, Plan) else 0)


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to retry, as the pieces ``tenacity.Retrying`` takes.

    The pieces read the per-call budget (``max_retries``, deadline) from the :class:`Plan`
    passed as the retried function's first argument, so one policy serves every call of a
    client, sync or async. The clients make each call's first attempt without tenacity
    (its loop costs ~10 us a call, about 1% of a loopback round trip) and hand over to it
    only after a failure, through :meth:`after_first_attempt`.

    Args:
        initial_backoff_s: Upper bound of the first wait (full jitter: uniform from 0).
        max_backoff_s: Cap of the exponential bound.
        retry_after_cap_s: Longest Retry-After honoured.

    Example:
        >>> policy = RetryPolicy()
        >>> sorted(policy.tenacity_kwargs())
        ['before_sleep', 'retry', 'retry_error_callback', 'stop', 'wait']
    """

    initial_backoff_s: float = C.RETRY_INITIAL_BACKOFF_S
    max_backoff_s: float = C.RETRY_MAX_BACKOFF_S
    retry_after_cap_s: float = C.RETRY_AFTER_CAP_S

    # --- the rules, by attempt number ------------------------------------------------------
    def delay(self, exc: BaseException | None, attempt: int) -> float:
        """Seconds before the next attempt: Retry-After (capped) where the server gave one,
        else full-jitter exponential backoff."""
        retry_after = getattr(exc, "retry_after", None)
        if isinstance(retry_after, (int, float)) and math.isfinite(retry_after):
            return max(0.0, min(float(retry_after), self.retry_after_cap_s))
        bound = min(self.max_backoff_s, self.initial_backoff_s * 2 ** max(0, attempt - 1))
        return random.uniform(0.0, bound)

    @staticmethod
    def exhausted(plan: Plan, attempt: int, upcoming_sleep: float) -> bool:
        """Whether to stop after ``attempt``: out of retries, or the wait would reach the
        deadline."""
        if attempt > plan.max_retries:
            return True
        left = plan.call.remaining()
        return left is not None and left - upcoming_sleep < MIN_ATTEMPT_S

    @staticmethod
    def log_retry(plan: Plan, attempt: int, exc: BaseException | None, sleep: float) -> None:
        """Log a retry at INFO (never a secret)."""
        logger.info(
            "%s attempt %d of %d failed with %s: %s; retrying in %.2fs [request_id=%s]",
            plan.operation,
            attempt,
            plan.max_retries + 1,
            type(exc).__name__,
            getattr(exc, "message", exc),
            sleep,
            plan.call.request_id,
        )

    @staticmethod
    def fail(plan: Plan, attempt: int, exc: BaseException) -> Any:
        """Raise the last error, or a deadline timeout when the deadline cut the retries."""
        if attempt <= plan.max_retries and plan.call.deadline is not None:
            raise JaguarTimeoutError(
                f"{plan.operation} did not finish within its deadline of {plan.deadline_s:g}s "
                f"({attempt} attempt(s); last error: {type(exc).__name__}: "
                f"{getattr(exc, 'message', exc)}). Raise deadline= or try again later.",
                request_id=getattr(exc, "request_id", None) or plan.call.request_id,
                code="deadline_exceeded",
            ) from exc
        logger.info(
            "%s gave up after %d attempt(s) [request_id=%s]",
            plan.operation,
            attempt,
            plan.call.request_id,
        )
        raise exc

    def after_first_attempt(self, plan: Plan, exc: BaseException) -> float:
        """Decide on a call's first attempt, made outside tenacity: the seconds to sleep
        before tenacity makes the next ones (which then count from attempt 2).

        Raises:
            BaseException: ``exc`` when it is not retryable or no retry is left, or a
                deadline :class:`JaguarTimeoutError`, as :meth:`give_up` would.
        """
        if not is_retryable(exc):
            raise exc
        sleep = self.delay(exc, 1)
        if self.exhausted(plan, 1, sleep):
            self.fail(plan, 1, exc)
        self.log_retry(plan, 1, exc, sleep)
        plan.attempts_before = 1
        return sleep

    # --- tenacity's pieces -------------------------------------------------------------------
    def retry(self, state: RetryCallState) -> bool:
        """tenacity ``retry``: retry transient failures only."""
        outcome = state.outcome
        if outcome is None or not outcome.failed:
            return False
        exc = outcome.exception()
        return exc is not None and is_retryable(exc)

    def wait(self, state: RetryCallState) -> float:
        """tenacity ``wait``: Retry-After (capped) where the server gave one, else backoff."""
        exc = state.outcome.exception() if state.outcome is not None else None
        return self.delay(exc, _attempt(state))

    def stop(self, state: RetryCallState) -> bool:
        """tenacity ``stop``: out of retries, or the wait would reach the deadline."""
        return self.exhausted(_plan_of(state), _attempt(state), state.upcoming_sleep)

    def before_sleep(self, state: RetryCallState) -> None:
        """tenacity ``before_sleep``: log the retry at INFO (never a secret)."""
        exc = state.outcome.exception() if state.outcome is not None else None
        self.log_retry(_plan_of(state), _attempt(state), exc, state.upcoming_sleep)

    def give_up(self, state: RetryCallState) -> Any:
        """tenacity ``retry_error_callback``: raise the last error, or a deadline timeout."""
        exc = state.outcome.exception() if state.outcome is not None else None
        assert exc is not None
        return self.fail(_plan_of(state), _attempt(state), exc)

    def tenacity_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``tenacity.Retrying`` / ``tenacity.AsyncRetrying``."""
        return {
            "retry": self.retry,
            "wait": self.wait,
            "stop": self.stop,
            "before_sleep": self.before_sleep,
            "retry_error_callback": self.give_up,
        }


# --- replies ---------------------------------------------------------------------------------
def _raise_for_plain(data: Mapping[str, Any], request_id: str | None) -> None:
    check_schema_version(dict(data))
    error = data.get("error")
    if isinstance(error, Mapping):
        from ._exceptions import error_from_payload

        raise error_from_payload(error, request_id=request_id)


def parse_reply(operation: Operation, reply: Reply) -> ResultModel:
    """Turn a transport's reply into the operation's result model.

    Args:
        operation: The operation the reply answers.
        reply: Plain data (Modal, in-process) or a JSON document (HTTP).

    Returns:
        A :class:`GenerationResult`, :class:`ModelInfo` or :class:`HealthStatus`.

    Raises:
        IncompatibleVersionError: The payload is of another wire-schema version.
        JaguarError: The payload is an error envelope (its mapped subclass), or malformed.
    """
    model = OPERATIONS[operation].result
    try:
        if reply.is_json:
            raw = reply.data
            if not isinstance(raw, (bytes, bytearray, str)):
                raise TypeError("a JSON reply must hold bytes")
            try:
                parsed = model.model_validate_json(raw)
            except ValidationError:
                # Slow path: find out whether it is an error envelope or another schema version.
                try:
                    document = json.loads(raw)
                except ValueError:
                    raise _malformed(operation, reply, "not JSON") from None
                if isinstance(document, Mapping):
                    _raise_for_plain(document, reply.request_id)
                raise
            check_schema_version({"schema_version": parsed.schema_version})
            return parsed
        data = reply.data
        if not isinstance(data, Mapping):
            raise TypeError("a plain-data reply must be a dict")
        _raise_for_plain(data, reply.request_id)
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        where = ".".join(str(part) for part in errors[0]["loc"]) if errors else ""
        why = errors[0]["msg"] if errors else "invalid"
        raise _malformed(operation, reply, f"{where}: {why}") from None
    except TypeError as exc:
        raise _malformed(operation, reply, str(exc)) from None


def _malformed(operation: Operation, reply: Reply, why: str) -> JaguarError:
    return JaguarError(
        f"The server's answer to {operation} is not a valid jaguar payload ({why}). Check that "
        "base_url points at a jaguar server and that both sides run compatible versions.",
        request_id=reply.request_id,
        code="malformed_response",
    )


# --- progress --------------------------------------------------------------------------------
class ProgressBar:
    """A tqdm bar when wanted; silent otherwise.

    Args:
        total: Number of items.
        enabled: Whether to show a bar at all.

    Raises:
        ConfigurationError: A bar is wanted and tqdm is not installed (the ``progress`` extra).
    """

    def __init__(self, total: int | None, enabled: bool) -> None:
        self._bar: Any = None
        if not enabled:
            return
        tqdm = import_extra("tqdm.auto", "progress", what="A progress bar (progress=True)").tqdm
        self._bar = tqdm(total=total, desc="jaguar", unit="image")

    @property
    def enabled(self) -> bool:
        """Whether a bar is shown."""
        return self._bar is not None

    def update(self, ok: bool) -> None:
        """Count one finished item."""
        if self._bar is not None:
            self._bar.update(1)
            if not ok:
                errors = getattr(self, "_errors", 0) + 1
                self._errors = errors
                self._bar.set_postfix(errors=errors)

    def note(self, event: ProgressEvent) -> None:
        """Show a job's latest progress event (its step) next to the count of finished items."""
        if self._bar is not None and event.stage == "running" and event.total_steps:
            self._bar.set_postfix_str(f"step {event.step}/{event.total_steps}", refresh=False)

    def close(self) -> None:
        """Finish the bar."""
        if self._bar is not None:
            self._bar.close()


# --- the core --------------------------------------------------------------------------------
def _check_positive(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequestError(
            f"{name}: must be a number of seconds (got {value!r})", field=name
        )
    if math.isnan(value) or value <= 0:
        raise InvalidRequestError(f"{name}: must be positive (got {value!r})", field=name)
    return None if math.isinf(value) else float(value)


def _check_retries(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidRequestError(
            f"max_retries: must be an integer >= 0 (got {value!r})", field="max_retries"
        )
    return value


@dataclass
class _Shared:
    closed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class ClientCore:
    """The state and logic one client (sync or async) runs on.

    Args:
        config: The resolved settings.
        transport: The transport calls go through.
        headers: Extra HTTP headers for every call.
        shared: State shared with the ``with_options`` copies (whether the client is closed).
    """

    policy: RetryPolicy = RetryPolicy()

    def __init__(
        self,
        config: ResolvedConfig,
        transport: AnyTransport,
        *,
        headers: Mapping[str, str] | None = None,
        shared: _Shared | None = None,
    ) -> None:
        self.config = config
        self.transport = transport
        self.headers = dict(headers or {})
        self.retry_kwargs = self.policy.tenacity_kwargs()
        self._shared = shared or _Shared()

    def sync_transport(self) -> SyncTransport:
        """The transport, typed for the sync client."""
        return cast(SyncTransport, self.transport)

    def async_transport(self) -> AsyncTransport:
        """The transport, typed for the async client."""
        return cast(AsyncTransport, self.transport)

    def mark_closed(self) -> bool:
        """Mark the client (and its ``with_options`` copies) closed.

        Returns:
            ``True`` the first time: the caller closes the transport then.
        """
        with self._shared.lock:
            first = not self._shared.closed
            self._shared.closed = True
        return first

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        flavour: Flavour,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        model: str | None = None,
        modal_app: str | None = None,
        modal_class: str | None = None,
        modal_environment: str | None = None,
        timeout: float | None = None,
        connect_timeout: float | None = None,
        max_retries: int | None = None,
        http_client: httpx.Client | httpx.AsyncClient | None = None,
        transport: AnyTransport | None = None,
        headers: Mapping[str, str] | None = None,
        config_path: str | os.PathLike[str] | None = None,
        device: str | None = None,
        modal_options: Mapping[str, Any] | None = None,
    ) -> ClientCore:
        """Resolve the configuration and build the transport for a new client.

        Args:
            flavour: ``"sync"`` or ``"async"``: which transport classes to build.
            device: For the in-process backend: the torch device (``None``: best available).
            modal_options: For the Modal backend: ``gpu`` and ``function_timeout`` overrides
                (``Cls.with_options``).
            **rest: The client constructor's arguments.

        Raises:
            ConfigurationError: Nothing or two things configured, a malformed setting, or a
                transport or http_client of the wrong flavour.
        """
        from ._logging import configure_logging

        configure_logging()
        _check_positive("timeout", timeout)
        _check_positive("connect_timeout", connect_timeout)
        _check_retries(max_retries)
        if base_url is None and http_client is not None and str(http_client.base_url):
            base_url = str(http_client.base_url)
        config = resolve_config(
            {
                "base_url": base_url,
                "api_key": api_key,
                "model": model,
                "modal_app": modal_app,
                "modal_class": modal_class,
                "modal_environment": modal_environment,
                "timeout": timeout,
                "connect_timeout": connect_timeout,
                "max_retries": max_retries,
            },
            config_path=config_path,
            has_transport=transport is not None,
        )
        if (
            modal_options
            and any(v is not None for v in modal_options.values())
            and (config.backend != "modal")
        ):
            raise ConfigurationError("gpu= and function_timeout= only apply to a Modal app.")
        if transport is None:
            transport = _build_transport(flavour, config, http_client, device, modal_options)
        else:
            _check_flavour(flavour, transport)
        return cls(config, transport, headers=headers)

    def copy(self, *, timeout: float | None, max_retries: int | None) -> ClientCore:
        """A core sharing this one's transport (connection pool) and closed state."""
        changes: dict[str, Any] = {}
        if timeout is not None:
            changes["timeout"] = _check_positive("timeout", timeout)
        if max_retries is not None:
            changes["max_retries"] = _check_retries(max_retries)
        return ClientCore(
            replace(self.config, **changes),
            self.transport,
            headers=self.headers,
            shared=self._shared,
        )

    # --- planning ----------------------------------------------------------------------------
    def _plan(
        self,
        operation: Operation,
        request: GenerateRequest | None = None,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Plan:
        if self._shared.closed:
            raise JaguarError("This client is closed; create a new one.", code="client_closed")
        read = _check_positive("timeout", timeout)
        total = _check_positive("deadline", deadline)
        retries = _check_retries(max_retries)
        for name, value in (("request_id", request_id), ("idempotency_key", idempotency_key)):
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InvalidRequestError(f"{name}: must be a non-empty string", field=name)
        if retries is None and not OPERATIONS[operation].retried:
            retries = 0
        started = time.monotonic()
        call = Call(
            operation=operation,
            request=request,
            request_id=request_id or f"req_{os.urandom(16).hex()}",  # 4x cheaper than uuid4
            idempotency_key=idempotency_key,
            connect_timeout=self.config.connect_timeout,
            read_timeout=read if read is not None else self.config.timeout,
            deadline=started + total if total is not None else None,
            headers={**self.headers, **(headers or {})},
        )
        return Plan(
            call=call,
            max_retries=retries if retries is not None else self.config.max_retries,
            deadline_s=total,
            started=started,
        )

    @staticmethod
    def split_options(
        method: str, options: Mapping[str, Any], *, extra: frozenset[str] = frozenset()
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split a method's keyword arguments into request fields and call options.

        Args:
            method: The method's name, for the message.
            options: The keyword arguments.
            extra: Further option names the method takes (ids, ``webhook_url``).

        Returns:
            ``(request fields, call options)``.

        Raises:
            TypeError: An unknown keyword, naming the closest allowed one.
        """
        fields: dict[str, Any] = {}
        call: dict[str, Any] = {}
        allowed = CALL_OPTION_NAMES | extra
        for name, value in options.items():
            if name in PARAM_NAMES:
                fields[name] = value
            elif name in allowed:
                call[name] = value
            else:
                names = sorted(PARAM_NAMES | allowed)
                close = difflib.get_close_matches(name, names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise TypeError(
                    f"{method}() got an unexpected keyword argument {name!r}{hint}; "
                    f"allowed: {', '.join(names)}"
                )
        return fields, call

    @staticmethod
    def build_request(prompt: str | GenerateRequest, fields: Mapping[str, Any]) -> GenerateRequest:
        """Validate a prompt (or a request) and keyword fields into a request, before any network.

        A keyword argument always wins over the same field of a given request; the result
        remembers which fields were set, and only those are sent.

        Raises:
            InvalidRequestError: Naming the field at fault and its allowed range.
        """
        if isinstance(prompt, GenerateRequest):
            return validate_request({**prompt.wire_fields(), **fields}) if fields else prompt
        return validate_request({"prompt": prompt, **fields})

    def plan_generate(
        self,
        operation: Literal["generate", "submit"],
        prompt: str | GenerateRequest,
        options: Mapping[str, Any],
    ) -> Plan:
        """Validate and plan one ``generate`` or ``submit``; one idempotency key for all its
        attempts.

        Raises:
            TypeError: An unknown keyword argument.
            InvalidRequestError: A bad field, or (``submit``) a ``webhook_url`` that is not an
                absolute http(s) URL or is given on a transport other than HTTP (only a
                jaguar server signs and posts webhooks).
        """
        extra = ID_OPTION_NAMES | ({"webhook_url"} if operation == "submit" else frozenset())
        fields, call = self.split_options(operation, options, extra=frozenset(extra))
        request = self.build_request(prompt, fields)
        webhook_url = call.pop("webhook_url", None)
        if webhook_url is not None:
            self._check_webhook_url(webhook_url)
        call["idempotency_key"] = call.get("idempotency_key") or str(uuid.uuid4())
        plan = self._plan(operation, request, **call)
        if webhook_url is not None:
            plan.call = replace(plan.call, webhook_url=webhook_url)
        return plan

    def _check_webhook_url(self, webhook_url: Any) -> None:
        # The form the server checks too (it also refuses hosts with internal addresses).
        try:
            split_webhook_url(webhook_url)
        except ValueError as exc:
            raise InvalidRequestError(str(exc), field="webhook_url") from None
        if getattr(self.transport, "name", None) != "http":
            raise InvalidRequestError(
                "webhook_url: only a jaguar HTTP server posts webhooks; on Modal or "
                "in-process, poll the job (job.wait(), job.events()) instead.",
                field="webhook_url",
            )

    def plan_request(
        self,
        request: GenerateRequest,
        operation: Literal["generate", "submit"],
        call_options: Mapping[str, Any],
    ) -> Plan:
        """Plan a ``generate`` or ``submit`` of an already validated request (an item of
        ``generate_many``), with a fresh idempotency key."""
        return self._plan(operation, request, idempotency_key=str(uuid.uuid4()), **call_options)

    def plan_job(
        self,
        operation: Operation,
        job_id: str,
        *,
        timeout: float | None = None,
        wait: float | None = None,
        after_events: int | None = None,
    ) -> Plan:
        """Plan ``job_status``, ``job_result`` or ``job_cancel`` of one job.

        Args:
            operation: The job operation.
            job_id: The job.
            timeout: Read timeout of each attempt (default: the client's).
            wait: ``job_status`` only: let the backend hold the answer this many seconds
                until the job ends (a long-poll); the attempt's read timeout grows by as much.
            after_events: With ``wait``: also answer once the job has more events than this.

        Raises:
            InvalidRequestError: ``job_id`` is not a non-empty string.
        """
        if not isinstance(job_id, str) or not job_id.strip():
            raise InvalidRequestError("job_id: must be a non-empty string", field="job_id")
        plan = self._plan(operation, timeout=timeout)
        read = plan.call.read_timeout
        if wait is not None and read is not None:
            read += wait
        plan.call = replace(
            plan.call, job_id=job_id, wait=wait, after_events=after_events, read_timeout=read
        )
        return plan

    def plan_simple(
        self, operation: Operation, options: Mapping[str, Any], *, admin_key: str | None = None
    ) -> Plan:
        """Plan ``info``, ``health`` or ``reload`` with the call options given.

        ``reload`` is not retried unless ``max_retries`` is given: a reload that timed out may
        still be running on the server.
        """
        _, call = self.split_options(operation, options)
        headers = {"Authorization": f"Bearer {admin_key}"} if admin_key else None
        return self._plan(operation, headers=headers, **call)

    # --- results -----------------------------------------------------------------------------
    def parse(self, plan: Plan, reply: Reply) -> Any:
        """Parse a reply to the plan's operation (see :func:`parse_reply`)."""
        result = parse_reply(plan.operation, reply)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s done in %.1f ms [request_id=%s]",
                plan.operation,
                (time.monotonic() - plan.started) * 1000,
                reply.request_id or plan.call.request_id,
            )
        return result

    # --- generate_many -----------------------------------------------------------------------
    def split_many_options(
        self, options: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split ``generate_many``'s ``**options`` into request fields and call options.

        Raises:
            TypeError: An unknown option, or one that must differ per item.
        """
        for name in ID_OPTION_NAMES & set(options):
            raise TypeError(
                f"generate_many() takes no {name}: every item gets its own; pass "
                "GenerateRequest items and call generate() for per-item control"
            )
        return self.split_options("generate_many", options)

    def check_many(
        self,
        items: Any,
        *,
        concurrency: Any,
        use_jobs: bool | None,
        options: Mapping[str, Any],
    ) -> None:
        """The checks of :meth:`plan_many` that need neither the items' contents nor I/O
        (``generate_iter`` makes them at the call, before it fetches any image URL).

        Raises:
            TypeError: An unknown option, one that must differ per item, or a single string.
            ValueError: ``concurrency`` is not an integer >= 1.
            ConfigurationError: ``use_jobs=True`` on a transport without jobs.
        """
        if isinstance(items, (str, bytes, GenerateRequest)):
            raise TypeError("generate_many() takes a list of prompts or requests, not one")
        self.split_many_options(options)
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency must be an integer >= 1 (got {concurrency!r})")
        self.many_uses_jobs(use_jobs)

    def plan_many(
        self,
        items: Iterable[ManyItem],
        *,
        concurrency: int,
        use_jobs: bool | None,
        options: Mapping[str, Any],
    ) -> ManyPlan:
        """Validate ``generate_many``/``generate_iter``'s arguments and every item, before any
        network.

        Raises:
            TypeError: An unknown option, one that must differ per item, or a single string.
            ValueError: ``concurrency`` is not an integer >= 1.
            ConfigurationError: ``use_jobs=True`` on a transport without jobs.
        """
        self.check_many(items, concurrency=concurrency, use_jobs=use_jobs, options=options)
        fields, call_options = self.split_many_options(options)
        jobs = self.many_uses_jobs(use_jobs)
        return ManyPlan(
            items=self.normalise_items(items, fields),
            call_options=call_options,
            jobs=jobs,
            fall_back=use_jobs is None,
            wait_s=self.many_wait_s(call_options) if jobs else None,
            concurrency=concurrency,
        )

    def jobs_supported(self) -> bool:
        """Whether the transport runs jobs.

        The built-in transports (``http``, ``modal``, ``local``) do; another transport does
        when it sets ``supports_jobs = True``.
        """
        declared = getattr(self.transport, "supports_jobs", None)
        if isinstance(declared, bool):
            return declared
        return getattr(self.transport, "name", None) in JOB_TRANSPORTS

    def many_uses_jobs(self, use_jobs: bool | None) -> bool:
        """Resolve ``generate_many``'s ``use_jobs``: ``None`` means "what the transport does
        best", its ``batch_via_jobs`` attribute (``False``, direct calls, when it has none).

        Every built-in transport runs batches as direct calls: one round trip per item on
        HTTP (the server queues them at its GPU lock), a spawned call awaited once on Modal,
        a worker thread in-process; a job costs a submit, a status call and a result fetch
        (``python -m benchmarks --only concurrency`` measures both).

        Raises:
            ConfigurationError: ``use_jobs=True`` on a transport without jobs.
        """
        if use_jobs is None:
            prefers = getattr(self.transport, "batch_via_jobs", False)
            return prefers is True and self.jobs_supported()
        if use_jobs and not self.jobs_supported():
            raise ConfigurationError(
                f"use_jobs=True, but the {getattr(self.transport, 'name', '?')!r} transport "
                "does not run jobs; pass use_jobs=False (or None)."
            )
        return bool(use_jobs)

    def many_wait_s(self, call_options: Mapping[str, Any]) -> float | None:
        """How long ``generate_many`` waits for one item's job.

        The item's ``deadline``, else its ``timeout``, else the client's timeout (``None``: no
        limit). An item whose job takes longer is cancelled and becomes a
        :class:`JaguarTimeoutError`, as a direct call would time out.
        """
        for name in ("deadline", "timeout"):
            value = _check_positive(name, call_options.get(name))
            if value is not None:
                return value
        return self.config.timeout

    def normalise_items(
        self, items: Iterable[ManyItem], fields: Mapping[str, Any]
    ) -> list[GenerateRequest | InvalidRequestError]:
        """Validate every item of ``generate_many``; a bad item becomes its error in place.

        A string is a prompt; a dict holds request fields; ``fields`` fill in what a dict does
        not set; a :class:`GenerateRequest` is used as is; an :class:`InvalidRequestError` (an
        item whose image URL could not be fetched) stays in place. ``items`` is a list of items
        (:meth:`check_many`, run first by :meth:`plan_many`, refuses a single string).
        """
        out: list[GenerateRequest | InvalidRequestError] = []
        for item in items:
            try:
                if isinstance(item, (GenerateRequest, InvalidRequestError)):
                    out.append(item)
                elif isinstance(item, Mapping):
                    out.append(validate_request({**fields, **dict(item)}))
                else:
                    out.append(validate_request({"prompt": item, **fields}))
            except InvalidRequestError as exc:
                out.append(exc)
        return out

    # --- description -------------------------------------------------------------------------
    def describe(self, class_name: str) -> str:
        """The client's ``repr``: backend, target and budgets; never the api key."""
        cfg = self.config
        if cfg.backend == "http":
            target = f"base_url={cfg.base_url!r}"
        elif cfg.backend == "modal":
            target = f"modal_app={cfg.modal_app!r}, modal_class={cfg.modal_class!r}"
        elif cfg.backend == "local":
            target = f"model={cfg.model!r}"
        else:
            target = f"transport={getattr(self.transport, 'name', type(self.transport).__name__)!r}"
        return (
            f"{class_name}({target}, timeout={cfg.timeout!r}, max_retries={cfg.max_retries}, "
            f"api_key={'set' if cfg.api_key else None})"
        )


# --- transports ------------------------------------------------------------------------------
def _check_flavour(flavour: Flavour, transport: AnyTransport) -> None:
    import inspect

    is_async = inspect.iscoroutinefunction(getattr(transport, "send", None))
    if is_async != (flavour == "async"):
        wanted = "AsyncTransport (async def send)" if flavour == "async" else "SyncTransport"
        raise ConfigurationError(
            f"transport= must be a {wanted} for this client; got {type(transport).__name__}."
        )


def _build_transport(
    flavour: Flavour,
    config: ResolvedConfig,
    http_client: Any,
    device: str | None,
    modal_options: Mapping[str, Any] | None = None,
) -> AnyTransport:
    if http_client is not None and config.backend != "http":
        raise ConfigurationError("http_client= only applies to an HTTP base_url.")
    if config.backend == "http":
        from ._transports.http import AsyncHttpTransport, HttpTransport

        assert config.base_url is not None
        kwargs: dict[str, Any] = {
            "api_key": config.api_key,
            "connect_timeout": config.connect_timeout,
            "http_client": http_client,
        }
        if flavour == "async":
            return AsyncHttpTransport(config.base_url, **kwargs)
        return HttpTransport(config.base_url, **kwargs)
    if config.backend == "modal":
        return build_modal_transport(
            flavour,
            config.modal_app or C.DEFAULT_MODAL_APP,
            config.modal_class,
            environment=config.modal_environment,
            **{k: v for k, v in (modal_options or {}).items() if v is not None},
        )
    if config.backend == "local":
        return build_local_transport(flavour, config.model or "tiny", device=device)
    raise ConfigurationError("No transport to build.")  # pragma: no cover


def build_modal_transport(
    flavour: Flavour, app: str, cls_name: str, *, environment: str | None, **options: Any
) -> AnyTransport:
    """Build the Modal transport (imports ``modal`` only now).

    Args:
        options: ``gpu`` / ``function_timeout`` (``Cls.with_options`` overrides).

    Raises:
        ConfigurationError: The ``modal`` extra is not installed, or an option is malformed.
    """
    # Checked now, so from_modal() fails when called; modal itself is imported on first use.
    require_extras("modal", what="Calling a Modal deployment")
    from ._transports import modal as module

    factory = module.AsyncModalTransport if flavour == "async" else module.ModalTransport
    transport: AnyTransport = factory(app, cls_name, environment=environment, **options)
    return transport


def build_local_transport(flavour: Flavour, model: str, *, device: str | None) -> AnyTransport:
    """Load a model in this process and wrap it in a local transport.

    Raises:
        ConfigurationError: The engine extra is missing or the model cannot be loaded.
    """
    from ._transports.local import AsyncLocalTransport, LocalTransport, load_service

    service = load_service(model, device=device)
    if flavour == "async":
        return AsyncLocalTransport(service, model=model)
    return LocalTransport(service, model=model)
