"""``JaguarClient`` and ``AsyncJaguarClient``: thin sync and async shells over one core.

All logic (configuration, validation, the retry policy, parsing, ``generate_many`` item
handling) lives in :mod:`jaguar_sdk._core`. The two classes differ only in how they wait:
``tenacity.Retrying`` + ``transport.send`` versus ``tenacity.AsyncRetrying`` +
``await transport.send``; a ThreadPoolExecutor versus a Semaphore for ``generate_many``.
Their public methods have identical names and signatures (a test checks it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tenacity import AsyncRetrying, Retrying

from . import _constants as C
from ._core import ClientCore, ManyItem, Plan, ProgressBar
from ._exceptions import JaguarError, JaguarTimeoutError, NotFoundError
from ._jobs import AsyncJob, Job
from ._transports._base import AsyncTransport, Reply, SyncTransport
from ._types import GenerateRequest, GenerationResult, HealthStatus, ModelInfo, OutputFormat

if TYPE_CHECKING:
    import httpx
    from typing_extensions import Self

__all__ = ["AsyncJaguarClient", "JaguarClient"]


class JaguarClient:
    """Generate images with Shuttle Jaguar over HTTP, on Modal, or in this process.

    Settings resolve in order: these arguments, then environment variables (``JAGUAR_BASE_URL``,
    ``JAGUAR_API_KEY``, ``JAGUAR_MODEL``, ``JAGUAR_MODAL_APP``, ``JAGUAR_MODAL_CLASS``,
    ``JAGUAR_MODAL_ENVIRONMENT``, ``JAGUAR_TIMEOUT``, ``JAGUAR_MAX_RETRIES``), then the user config
    file (``$JAGUAR_CONFIG``, ``$XDG_CONFIG_HOME/jaguar/config.json`` or
    ``~/.config/jaguar/config.json``), then defaults. Exactly one way of reaching the model must
    be chosen: ``base_url`` (HTTP), ``modal_app`` (Modal) or ``model`` (in-process).

    The client is thread-safe: one pooled connection set serves every thread.

    Args:
        base_url: Root URL of a jaguar HTTP server, e.g. ``"http://127.0.0.1:8000"``.
        api_key: Bearer token for the server.
        model: Run this model in-process (``"tiny"`` or a model folder); see :meth:`local`.
        modal_app: Name of the deployed Modal app; see :meth:`from_modal`.
        modal_class: Name of the Modal class (default ``"JaguarModel"``).
        modal_environment: Modal environment, if not the default one.
        timeout: Read timeout of one attempt in seconds (default 300: Modal cold starts).
        connect_timeout: Seconds to establish a connection (default 10).
        max_retries: Retries of transient failures after the first attempt (default 2).
        http_client: An ``httpx.Client`` to use for HTTP (proxies, certificates...); not
            closed by this client.
        transport: A ready :class:`~jaguar_sdk._transports.SyncTransport` (custom backends,
            tests); it is the backend, and closed with the client.
        headers: Extra HTTP headers sent with every request.
        config_path: Read this config file instead of the default one.

    Raises:
        ConfigurationError: Nothing configured (the message shows the three ways), two ways at
            once, or a malformed setting.

    Example:
        >>> with JaguarClient(base_url="http://127.0.0.1:8000") as client:  # doctest: +SKIP
        ...     result = client.generate("a jaguar in the rain", seed=7)
        ...     result.save("jaguar.jpg")
    """

    def __init__(
        self,
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
        http_client: httpx.Client | None = None,
        transport: SyncTransport | None = None,
        headers: dict[str, str] | None = None,
        config_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self._core = ClientCore.create(
            "sync",
            base_url=base_url,
            api_key=api_key,
            model=model,
            modal_app=modal_app,
            modal_class=modal_class,
            modal_environment=modal_environment,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_retries=max_retries,
            http_client=http_client,
            transport=transport,
            headers=headers,
            config_path=config_path,
        )

    # --- alternative constructors ------------------------------------------------------------
    @classmethod
    def local(cls, model: str = "tiny", *, device: str | None = None, **options: Any) -> Self:
        """Run the model in this process (needs ``pip install 'jaguar-sdk[engine]'``).

        Args:
            model: ``"tiny"`` (a small offline model for tests and demos) or a diffusers
                model folder.
            device: ``"cpu"``, ``"cuda"``..., or ``None`` for the best available.
            **options: Other constructor arguments (``timeout``, ``max_retries``...).

        Returns:
            A client whose calls run in-process; closing it releases the model.

        Raises:
            ConfigurationError: The engine extra is missing or the model cannot be loaded.

        Example:
            >>> with JaguarClient.local(model="tiny") as client:  # doctest: +SKIP
            ...     client.generate("a cat", width=64, height=64).save("cat.jpg")
        """
        return cls._from_core(ClientCore.create("sync", model=model, device=device, **options))

    @classmethod
    def from_modal(
        cls,
        app: str = C.DEFAULT_MODAL_APP,
        cls_name: str = C.DEFAULT_MODAL_CLASS,
        *,
        environment: str | None = None,
        gpu: str | None = None,
        function_timeout: int | None = None,
        **options: Any,
    ) -> Self:
        """Call a deployed Modal app (needs ``pip install 'jaguar-sdk[modal]'``).

        Args:
            app: The Modal app name (default ``"shuttle-jaguar"``).
            cls_name: The Modal class name (default ``"JaguarModel"``).
            environment: The Modal environment, if not the default one.
            gpu: Run on this GPU type instead of the deployed one, e.g. ``"H200"``
                (``Cls.with_options(gpu=...)``: its own pool of containers, which does not keep
                the deployment's ``min_containers`` warm). ``info()`` reports the GPU used.
            function_timeout: Seconds one call may run on Modal, 1 to 86400
                (``with_options(timeout=...)``; also its own pool). Not the client's
                ``timeout``, which is how long this client waits for an answer.
            **options: Other constructor arguments (``timeout``, ``max_retries``...).

        Returns:
            A client calling the deployment's methods.

        Raises:
            ConfigurationError: The modal extra is missing, or ``gpu``/``function_timeout`` is
                malformed (checked before any network call).

        Example:
            >>> client = JaguarClient.from_modal("shuttle-jaguar", gpu="H200")  # doctest: +SKIP
        """
        core = ClientCore.create(
            "sync",
            modal_app=app,
            modal_class=cls_name,
            modal_environment=environment,
            modal_options={"gpu": gpu, "function_timeout": function_timeout},
            **options,
        )
        return cls._from_core(core)

    @classmethod
    def _from_core(cls, core: ClientCore) -> Self:
        client = object.__new__(cls)
        client._core = core
        return client

    # --- operations --------------------------------------------------------------------------
    def _run(self, plan: Plan) -> Any:
        reply: Reply = Retrying(**self._core.retry_kwargs)(self._send, plan)
        return self._core.parse(plan, reply)

    def _send(self, plan: Plan) -> Reply:
        return self._core.sync_transport().send(plan.call)

    def generate(
        self,
        prompt: str | GenerateRequest,
        *,
        width: int = C.DEFAULT_SIZE,
        height: int = C.DEFAULT_SIZE,
        steps: int = C.DEFAULT_STEPS,
        guidance_scale: float = C.DEFAULT_GUIDANCE,
        seed: int | None = None,
        num_images: int = C.DEFAULT_NUM_IMAGES,
        output_format: OutputFormat = C.DEFAULT_OUTPUT_FORMAT,
        quality: int = C.DEFAULT_QUALITY,
        max_sequence_length: int = C.DEFAULT_MAX_SEQUENCE_LENGTH,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> GenerationResult:
        """Generate images from a prompt.

        The arguments are validated before any network call. One idempotency key is used for
        every retry of this call, so the server generates at most once.

        Args:
            prompt: What to draw, or a complete :class:`GenerateRequest` (then the keyword
                request fields that differ from their defaults override the request's).
            width: Width in pixels, a multiple of 16 from 64 to 2048.
            height: Height in pixels, a multiple of 16 from 64 to 2048.
            steps: Denoising steps, 1 to 50 (Jaguar is distilled for 4).
            guidance_scale: 0 to 20.
            seed: 0 to 2**32-1, or ``None`` for a random one (the result reports it).
            num_images: 1 to 4.
            output_format: ``"jpeg"``, ``"png"`` or ``"webp"``.
            quality: JPEG/WebP quality, 1 to 100.
            max_sequence_length: T5 prompt tokens, 16 to 512.
            timeout: Read timeout of each attempt in seconds (default: the client's).
            deadline: Total seconds for the whole call, retries included.
            max_retries: Retries for this call (default: the client's).
            request_id: Your id for the request (sent as ``X-Request-ID``).
            idempotency_key: Your idempotency key (default: a fresh UUID per call).

        Returns:
            The images with seed, timings, model and request id.

        Raises:
            InvalidRequestError: An argument is out of range (``.field`` names it).
            AuthenticationError: The server refused the token.
            JaguarTimeoutError: An attempt timed out after the retries, or the deadline passed.
            JaguarConnectionError: The server could not be reached after the retries.
            GenerationError: The model failed on a valid request.
            JaguarError: Any other failure.

        Example:
            >>> result = client.generate("a jaguar", seed=7, width=768)  # doctest: +SKIP
            >>> result.save("jaguar.jpg")                                # doctest: +SKIP
        """
        plan = self._core.plan_generate(
            prompt,
            {
                "width": width,
                "height": height,
                "steps": steps,
                "guidance_scale": guidance_scale,
                "seed": seed,
                "num_images": num_images,
                "output_format": output_format,
                "quality": quality,
                "max_sequence_length": max_sequence_length,
            },
            timeout=timeout,
            deadline=deadline,
            max_retries=max_retries,
            request_id=request_id,
            idempotency_key=idempotency_key,
        )
        result: GenerationResult = self._run(plan)
        return result

    def submit(
        self,
        prompt: str | GenerateRequest,
        *,
        width: int = C.DEFAULT_SIZE,
        height: int = C.DEFAULT_SIZE,
        steps: int = C.DEFAULT_STEPS,
        guidance_scale: float = C.DEFAULT_GUIDANCE,
        seed: int | None = None,
        num_images: int = C.DEFAULT_NUM_IMAGES,
        output_format: OutputFormat = C.DEFAULT_OUTPUT_FORMAT,
        quality: int = C.DEFAULT_QUALITY,
        max_sequence_length: int = C.DEFAULT_MAX_SEQUENCE_LENGTH,
        webhook_url: str | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Submit a generation as a job and return at once with a handle on it.

        The job runs on the server (``POST /v1/jobs``), on Modal (``.spawn()``: results are
        kept for days) or in-process; poll it, follow its progress, cancel it, or pick it up
        in another process with ``get_job(job.id)``.

        Args:
            prompt: What to draw, or a complete :class:`GenerateRequest`.
            width: Width in pixels, a multiple of 16 from 64 to 2048.
            height: Height in pixels, a multiple of 16 from 64 to 2048.
            steps: Denoising steps, 1 to 50.
            guidance_scale: 0 to 20.
            seed: 0 to 2**32-1, or ``None`` for a random one.
            num_images: 1 to 4.
            output_format: ``"jpeg"``, ``"png"`` or ``"webp"``.
            quality: JPEG/WebP quality, 1 to 100.
            max_sequence_length: T5 prompt tokens, 16 to 512.
            webhook_url: HTTP only: where the server posts the signed result when the job
                finishes (verify it with :func:`jaguar_sdk.webhooks.verify`).
            timeout: Read timeout of the submit call in seconds.
            deadline: Total seconds for the submit call, retries included.
            max_retries: Retries of the submit call (one idempotency key: never two jobs).
            request_id: Your id for the generation.
            idempotency_key: Your idempotency key (default: a fresh UUID per call).

        Returns:
            The job handle.

        Raises:
            InvalidRequestError: An argument is out of range, or ``webhook_url`` is malformed
                or given on a transport that cannot post webhooks.
            RateLimitError: The server's job store is full (code ``job_store_full``).
            JaguarError: Any other failure.

        Example:
            >>> job = client.submit("a jaguar", seed=7)  # doctest: +SKIP
            >>> job.wait(300).state                      # doctest: +SKIP
            'succeeded'
        """
        plan = self._core.plan_submit(
            prompt,
            {
                "width": width,
                "height": height,
                "steps": steps,
                "guidance_scale": guidance_scale,
                "seed": seed,
                "num_images": num_images,
                "output_format": output_format,
                "quality": quality,
                "max_sequence_length": max_sequence_length,
            },
            webhook_url=webhook_url,
            timeout=timeout,
            deadline=deadline,
            max_retries=max_retries,
            request_id=request_id,
            idempotency_key=idempotency_key,
        )
        return Job(self, self._run(plan))

    def get_job(self, job_id: str, *, timeout: float | None = None) -> Job:
        """A handle on an existing job, e.g. one submitted by another process.

        Args:
            job_id: The job's id (``job.id``).
            timeout: Read timeout of the status call in seconds.

        Returns:
            The handle, with the job's current status.

        Raises:
            NotFoundError: No such job, or it expired.

        Example:
            >>> client.get_job("job_3f2a...").result(timeout=60)  # doctest: +SKIP
        """
        plan = self._core.plan_job("job_status", job_id, timeout=timeout)
        return Job(self, self._run(plan))

    def generate_many(
        self,
        prompts_or_requests: Iterable[ManyItem],
        *,
        concurrency: int = 4,
        progress: bool = False,
        use_jobs: bool | None = None,
        **options: Any,
    ) -> list[GenerationResult | JaguarError]:
        """Generate for many prompts concurrently; one result or one error per item, in order.

        Errors are returned in place, not raised, so one bad item never loses the others.
        By default each item runs as a job (``submit``, then wait for it) where the transport
        runs jobs (HTTP, Modal, in-process), so no item is bound by a web request's time limit;
        an HTTP server without the job routes (404) is called directly instead.

        Args:
            prompts_or_requests: Prompts, :class:`GenerateRequest` objects, or dicts of request
                fields.
            concurrency: Items in flight at once (threads sharing the connection pool).
            progress: Show a tqdm progress bar (when tqdm is installed): one tick per finished
                item, and the running job's denoising step next to it.
            use_jobs: ``True``: run every item as a job; ``False``: call ``generate`` per item;
                ``None`` (default): jobs where the transport supports them. On jobs an item
                waits up to its ``deadline`` (else ``timeout``, else the client's timeout),
                then its job is cancelled and the item is a :class:`JaguarTimeoutError`.
            **options: Request fields for every item (``width``, ``seed``...; a dict item's own
                fields win, a GenerateRequest is used as is) and call options (``timeout``,
                ``deadline``, ``max_retries``, each per item).

        Returns:
            A list as long as the input: a :class:`GenerationResult` or the
            :class:`JaguarError` of each item.

        Raises:
            TypeError: An unknown option, or a single string instead of a list.
            ValueError: ``concurrency`` below 1.
            ConfigurationError: ``use_jobs=True`` on a transport without jobs.

        Example:
            >>> results = client.generate_many(["a cat", "a dog"], width=512)  # doctest: +SKIP
        """
        fields, call_options = self._core.split_many_options(options)
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        jobs = [self._core.many_uses_jobs(use_jobs)]
        wait_s = self._core.many_wait_s(call_options)
        items = self._core.normalise_items(prompts_or_requests, fields)
        bar = ProgressBar(len(items), progress)

        def on_job(item: GenerateRequest) -> GenerationResult:
            try:
                job = Job(
                    self,
                    self._run(self._core.plan_request(item, operation="submit", **call_options)),
                )
            except NotFoundError:
                if use_jobs is not None:
                    raise
                jobs[0] = False  # a server without the job routes: call it directly
                return direct(item)
            try:
                job.wait(wait_s, on_progress=bar.note)
            except JaguarTimeoutError:
                with contextlib.suppress(JaguarError):
                    job.cancel()
                raise
            plan = self._core.plan_job("job_result", job.id, timeout=call_options.get("timeout"))
            result: GenerationResult = self._run(plan)
            return result

        def direct(item: GenerateRequest) -> GenerationResult:
            result: GenerationResult = self._run(self._core.plan_request(item, **call_options))
            return result

        def one(item: GenerateRequest | JaguarError) -> GenerationResult | JaguarError:
            try:
                if isinstance(item, JaguarError):
                    return item
                return on_job(item) if jobs[0] else direct(item)
            except JaguarError as exc:
                return exc
            finally:
                bar.update(not isinstance(item, JaguarError))

        try:
            if concurrency == 1 or len(items) <= 1:
                return [one(item) for item in items]
            with ThreadPoolExecutor(
                max_workers=min(concurrency, len(items)), thread_name_prefix="jaguar-many"
            ) as pool:
                return list(pool.map(one, items))
        finally:
            bar.close()

    def info(
        self,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
    ) -> ModelInfo:
        """What model is served, on which device, and how it was loaded.

        Args:
            timeout: Read timeout of each attempt in seconds.
            deadline: Total seconds for the call, retries included.
            max_retries: Retries for this call.

        Returns:
            The model info.

        Raises:
            JaguarError: The mapped failure (e.g. :class:`NotReadyError` after the retries).

        Example:
            >>> client.info().model.id  # doctest: +SKIP
            'shuttleai/shuttle-jaguar'
        """
        plan = self._core.plan_simple(
            "info", timeout=timeout, deadline=deadline, max_retries=max_retries
        )
        info: ModelInfo = self._run(plan)
        return info

    def health(
        self,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
    ) -> HealthStatus:
        """Liveness and readiness of the server or deployment.

        Args:
            timeout: Read timeout of each attempt in seconds.
            deadline: Total seconds for the call, retries included.
            max_retries: Retries for this call.

        Returns:
            ``status`` (``"ok"``, ``"loading"``, ``"error"``) and ``ready``.

        Raises:
            JaguarError: The server could not be reached, or answered an error.

        Example:
            >>> client.health().ready  # doctest: +SKIP
            True
        """
        plan = self._core.plan_simple(
            "health", timeout=timeout, deadline=deadline, max_retries=max_retries
        )
        status: HealthStatus = self._run(plan)
        return status

    def reload_model(
        self,
        *,
        admin_key: str | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
    ) -> ModelInfo:
        """Reload the model on the server (admin); requests keep being served meanwhile.

        Not retried unless ``max_retries`` is given: a reload that timed out may still run.

        Args:
            admin_key: The server's admin token (default: the client's ``api_key``).
            timeout: Read timeout of each attempt in seconds.
            deadline: Total seconds for the call, retries included.
            max_retries: Retries for this call (default 0).

        Returns:
            The info of the newly loaded model.

        Raises:
            AuthenticationError: Missing or wrong admin token (403: admin routes disabled).
            ServerError: The reload failed; the previous model keeps serving.

        Example:
            >>> client.reload_model(admin_key="s3cret").loaded  # doctest: +SKIP
            True
        """
        plan = self._core.plan_simple(
            "reload",
            timeout=timeout,
            deadline=deadline,
            max_retries=max_retries,
            admin_key=admin_key,
        )
        info: ModelInfo = self._run(plan)
        return info

    # --- lifecycle ---------------------------------------------------------------------------
    def with_options(self, *, timeout: float | None = None, max_retries: int | None = None) -> Self:
        """A copy with other defaults, sharing this client's connection pool.

        Closing the copy does not close the pool; close the original when done.

        Args:
            timeout: Read timeout of each attempt in seconds.
            max_retries: Retries of transient failures.

        Returns:
            The new client.

        Example:
            >>> client.with_options(max_retries=5).generate("a cat")  # doctest: +SKIP
        """
        return self._from_core(self._core.copy(timeout=timeout, max_retries=max_retries))

    def close(self) -> None:
        """Close the connection pool (or release the in-process model). Idempotent.

        Example:
            >>> client.close()  # doctest: +SKIP
        """
        if self._core.mark_closed():
            self._core.sync_transport().close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return self._core.describe(type(self).__name__)


class AsyncJaguarClient:
    """The asyncio twin of :class:`JaguarClient`: same arguments, same methods, awaited.

    Create it inside the event loop that uses it (its connection pool belongs to that loop).

    Args:
        base_url: Root URL of a jaguar HTTP server, e.g. ``"http://127.0.0.1:8000"``.
        api_key: Bearer token for the server.
        model: Run this model in-process (``"tiny"`` or a model folder); see :meth:`local`.
        modal_app: Name of the deployed Modal app; see :meth:`from_modal`.
        modal_class: Name of the Modal class (default ``"JaguarModel"``).
        modal_environment: Modal environment, if not the default one.
        timeout: Read timeout of one attempt in seconds (default 300: Modal cold starts).
        connect_timeout: Seconds to establish a connection (default 10).
        max_retries: Retries of transient failures after the first attempt (default 2).
        http_client: An ``httpx.AsyncClient`` to use for HTTP; not closed by this client.
        transport: A ready :class:`~jaguar_sdk._transports.AsyncTransport`.
        headers: Extra HTTP headers sent with every request.
        config_path: Read this config file instead of the default one.

    Raises:
        ConfigurationError: Nothing configured, two ways at once, or a malformed setting.

    Example:
        >>> async with AsyncJaguarClient(base_url="http://127.0.0.1:8000") as client:
        ...     result = await client.generate("a jaguar")  # doctest: +SKIP
    """

    def __init__(
        self,
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
        http_client: httpx.AsyncClient | None = None,
        transport: AsyncTransport | None = None,
        headers: dict[str, str] | None = None,
        config_path: str | os.PathLike[str] | None = None,
    ) -> None:
        self._core = ClientCore.create(
            "async",
            base_url=base_url,
            api_key=api_key,
            model=model,
            modal_app=modal_app,
            modal_class=modal_class,
            modal_environment=modal_environment,
            timeout=timeout,
            connect_timeout=connect_timeout,
            max_retries=max_retries,
            http_client=http_client,
            transport=transport,
            headers=headers,
            config_path=config_path,
        )

    @classmethod
    def local(cls, model: str = "tiny", *, device: str | None = None, **options: Any) -> Self:
        """Run the model in this process; calls run in worker threads. See
        :meth:`JaguarClient.local`.

        Args:
            model: ``"tiny"`` or a diffusers model folder.
            device: ``"cpu"``, ``"cuda"``..., or ``None`` for the best available.
            **options: Other constructor arguments.

        Returns:
            A client whose calls run in-process.

        Raises:
            ConfigurationError: The engine extra is missing or the model cannot be loaded.

        Example:
            >>> client = AsyncJaguarClient.local(model="tiny")  # doctest: +SKIP
        """
        return cls._from_core(ClientCore.create("async", model=model, device=device, **options))

    @classmethod
    def _from_core(cls, core: ClientCore) -> Self:
        client = object.__new__(cls)
        client._core = core
        return client

    @classmethod
    def from_modal(
        cls,
        app: str = C.DEFAULT_MODAL_APP,
        cls_name: str = C.DEFAULT_MODAL_CLASS,
        *,
        environment: str | None = None,
        gpu: str | None = None,
        function_timeout: int | None = None,
        **options: Any,
    ) -> Self:
        """Call a deployed Modal app. See :meth:`JaguarClient.from_modal`.

        Args:
            app: The Modal app name.
            cls_name: The Modal class name.
            environment: The Modal environment, if not the default one.
            gpu: Run on this GPU type (``Cls.with_options(gpu=...)``).
            function_timeout: Seconds one call may run on Modal (``with_options(timeout=...)``).
            **options: Other constructor arguments.

        Returns:
            A client calling the deployment's methods with ``.remote.aio``.

        Raises:
            ConfigurationError: The modal extra is missing, or an override is malformed.

        Example:
            >>> client = AsyncJaguarClient.from_modal(gpu="H200")  # doctest: +SKIP
        """
        core = ClientCore.create(
            "async",
            modal_app=app,
            modal_class=cls_name,
            modal_environment=environment,
            modal_options={"gpu": gpu, "function_timeout": function_timeout},
            **options,
        )
        return cls._from_core(core)

    async def _run(self, plan: Plan) -> Any:
        reply: Reply = await AsyncRetrying(**self._core.retry_kwargs)(self._send, plan)
        return self._core.parse(plan, reply)

    async def _send(self, plan: Plan) -> Reply:
        return await self._core.async_transport().send(plan.call)

    async def generate(
        self,
        prompt: str | GenerateRequest,
        *,
        width: int = C.DEFAULT_SIZE,
        height: int = C.DEFAULT_SIZE,
        steps: int = C.DEFAULT_STEPS,
        guidance_scale: float = C.DEFAULT_GUIDANCE,
        seed: int | None = None,
        num_images: int = C.DEFAULT_NUM_IMAGES,
        output_format: OutputFormat = C.DEFAULT_OUTPUT_FORMAT,
        quality: int = C.DEFAULT_QUALITY,
        max_sequence_length: int = C.DEFAULT_MAX_SEQUENCE_LENGTH,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> GenerationResult:
        """Generate images from a prompt. See :meth:`JaguarClient.generate`.

        Args:
            prompt: What to draw, or a complete :class:`GenerateRequest`.
            width: Width in pixels, a multiple of 16 from 64 to 2048.
            height: Height in pixels, a multiple of 16 from 64 to 2048.
            steps: Denoising steps, 1 to 50.
            guidance_scale: 0 to 20.
            seed: 0 to 2**32-1, or ``None`` for a random one.
            num_images: 1 to 4.
            output_format: ``"jpeg"``, ``"png"`` or ``"webp"``.
            quality: JPEG/WebP quality, 1 to 100.
            max_sequence_length: T5 prompt tokens, 16 to 512.
            timeout: Read timeout of each attempt in seconds.
            deadline: Total seconds for the whole call, retries included.
            max_retries: Retries for this call.
            request_id: Your id for the request.
            idempotency_key: Your idempotency key (default: a fresh UUID per call).

        Returns:
            The images with seed, timings, model and request id.

        Raises:
            InvalidRequestError: An argument is out of range (``.field`` names it).
            JaguarError: Any other failure (see :meth:`JaguarClient.generate`).

        Example:
            >>> result = await client.generate("a jaguar", seed=7)  # doctest: +SKIP
        """
        plan = self._core.plan_generate(
            prompt,
            {
                "width": width,
                "height": height,
                "steps": steps,
                "guidance_scale": guidance_scale,
                "seed": seed,
                "num_images": num_images,
                "output_format": output_format,
                "quality": quality,
                "max_sequence_length": max_sequence_length,
            },
            timeout=timeout,
            deadline=deadline,
            max_retries=max_retries,
            request_id=request_id,
            idempotency_key=idempotency_key,
        )
        result: GenerationResult = await self._run(plan)
        return result

    async def submit(
        self,
        prompt: str | GenerateRequest,
        *,
        width: int = C.DEFAULT_SIZE,
        height: int = C.DEFAULT_SIZE,
        steps: int = C.DEFAULT_STEPS,
        guidance_scale: float = C.DEFAULT_GUIDANCE,
        seed: int | None = None,
        num_images: int = C.DEFAULT_NUM_IMAGES,
        output_format: OutputFormat = C.DEFAULT_OUTPUT_FORMAT,
        quality: int = C.DEFAULT_QUALITY,
        max_sequence_length: int = C.DEFAULT_MAX_SEQUENCE_LENGTH,
        webhook_url: str | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
        request_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> AsyncJob:
        """Submit a generation as a job and return at once with a handle on it.

        The job runs on the server (``POST /v1/jobs``), on Modal (``.spawn()``: results are
        kept for days) or in-process; poll it, follow its progress, cancel it, or pick it up
        in another process with ``get_job(job.id)``.

        Args:
            prompt: What to draw, or a complete :class:`GenerateRequest`.
            width: Width in pixels, a multiple of 16 from 64 to 2048.
            height: Height in pixels, a multiple of 16 from 64 to 2048.
            steps: Denoising steps, 1 to 50.
            guidance_scale: 0 to 20.
            seed: 0 to 2**32-1, or ``None`` for a random one.
            num_images: 1 to 4.
            output_format: ``"jpeg"``, ``"png"`` or ``"webp"``.
            quality: JPEG/WebP quality, 1 to 100.
            max_sequence_length: T5 prompt tokens, 16 to 512.
            webhook_url: HTTP only: where the server posts the signed result when the job
                finishes (verify it with :func:`jaguar_sdk.webhooks.verify`).
            timeout: Read timeout of the submit call in seconds.
            deadline: Total seconds for the submit call, retries included.
            max_retries: Retries of the submit call (one idempotency key: never two jobs).
            request_id: Your id for the generation.
            idempotency_key: Your idempotency key (default: a fresh UUID per call).

        Returns:
            The job handle.

        Raises:
            InvalidRequestError: An argument is out of range, or ``webhook_url`` is malformed
                or given on a transport that cannot post webhooks.
            RateLimitError: The server's job store is full (code ``job_store_full``).
            JaguarError: Any other failure.

        Example:
            >>> job = client.submit("a jaguar", seed=7)  # doctest: +SKIP
            >>> job.wait(300).state                      # doctest: +SKIP
            'succeeded'
        """
        plan = self._core.plan_submit(
            prompt,
            {
                "width": width,
                "height": height,
                "steps": steps,
                "guidance_scale": guidance_scale,
                "seed": seed,
                "num_images": num_images,
                "output_format": output_format,
                "quality": quality,
                "max_sequence_length": max_sequence_length,
            },
            webhook_url=webhook_url,
            timeout=timeout,
            deadline=deadline,
            max_retries=max_retries,
            request_id=request_id,
            idempotency_key=idempotency_key,
        )
        return AsyncJob(self, await self._run(plan))

    async def get_job(self, job_id: str, *, timeout: float | None = None) -> AsyncJob:
        """A handle on an existing job, e.g. one submitted by another process.

        Args:
            job_id: The job's id (``job.id``).
            timeout: Read timeout of the status call in seconds.

        Returns:
            The handle, with the job's current status.

        Raises:
            NotFoundError: No such job, or it expired.

        Example:
            >>> client.get_job("job_3f2a...").result(timeout=60)  # doctest: +SKIP
        """
        plan = self._core.plan_job("job_status", job_id, timeout=timeout)
        return AsyncJob(self, await self._run(plan))

    async def generate_many(
        self,
        prompts_or_requests: Iterable[ManyItem],
        *,
        concurrency: int = 4,
        progress: bool = False,
        use_jobs: bool | None = None,
        **options: Any,
    ) -> list[GenerationResult | JaguarError]:
        """Generate for many prompts concurrently; one result or one error per item, in order.

        See :meth:`JaguarClient.generate_many`; concurrency is bounded by a semaphore.

        Args:
            prompts_or_requests: Prompts, :class:`GenerateRequest` objects, or dicts.
            concurrency: Items in flight at once.
            progress: Show a tqdm progress bar (when tqdm is installed).
            use_jobs: Run the items as jobs: ``None`` (default) where the transport supports
                them, ``True`` always, ``False`` never (see :meth:`JaguarClient.generate_many`).
            **options: Request fields and call options for every item.

        Returns:
            A :class:`GenerationResult` or the :class:`JaguarError` of each item, in order.

        Raises:
            TypeError: An unknown option, or a single string instead of a list.
            ValueError: ``concurrency`` below 1.
            ConfigurationError: ``use_jobs=True`` on a transport without jobs.

        Example:
            >>> results = await client.generate_many(["a cat", "a dog"])  # doctest: +SKIP
        """
        fields, call_options = self._core.split_many_options(options)
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        jobs = [self._core.many_uses_jobs(use_jobs)]
        wait_s = self._core.many_wait_s(call_options)
        items = self._core.normalise_items(prompts_or_requests, fields)
        bar = ProgressBar(len(items), progress)
        gate = asyncio.Semaphore(concurrency)

        async def on_job(item: GenerateRequest) -> GenerationResult:
            try:
                plan = self._core.plan_request(item, operation="submit", **call_options)
                job = AsyncJob(self, await self._run(plan))
            except NotFoundError:
                if use_jobs is not None:
                    raise
                jobs[0] = False  # a server without the job routes: call it directly
                return await direct(item)
            try:
                await job.wait(wait_s, on_progress=bar.note)
            except JaguarTimeoutError:
                with contextlib.suppress(JaguarError):
                    await job.cancel()
                raise
            plan = self._core.plan_job("job_result", job.id, timeout=call_options.get("timeout"))
            result: GenerationResult = await self._run(plan)
            return result

        async def direct(item: GenerateRequest) -> GenerationResult:
            result: GenerationResult = await self._run(
                self._core.plan_request(item, **call_options)
            )
            return result

        async def one(item: GenerateRequest | JaguarError) -> GenerationResult | JaguarError:
            if isinstance(item, JaguarError):
                bar.update(False)
                return item
            async with gate:
                try:
                    return await (on_job(item) if jobs[0] else direct(item))
                except JaguarError as exc:
                    return exc
                finally:
                    bar.update(True)

        try:
            return list(await asyncio.gather(*(one(item) for item in items)))
        finally:
            bar.close()

    async def info(
        self,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
    ) -> ModelInfo:
        """What model is served. See :meth:`JaguarClient.info`.

        Args:
            timeout: Read timeout of each attempt in seconds.
            deadline: Total seconds for the call, retries included.
            max_retries: Retries for this call.

        Returns:
            The model info.

        Raises:
            JaguarError: The mapped failure.

        Example:
            >>> (await client.info()).device  # doctest: +SKIP
            'cuda'
        """
        plan = self._core.plan_simple(
            "info", timeout=timeout, deadline=deadline, max_retries=max_retries
        )
        info: ModelInfo = await self._run(plan)
        return info

    async def health(
        self,
        *,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
    ) -> HealthStatus:
        """Liveness and readiness. See :meth:`JaguarClient.health`.

        Args:
            timeout: Read timeout of each attempt in seconds.
            deadline: Total seconds for the call, retries included.
            max_retries: Retries for this call.

        Returns:
            ``status`` and ``ready``.

        Raises:
            JaguarError: The server could not be reached, or answered an error.

        Example:
            >>> (await client.health()).ready  # doctest: +SKIP
            True
        """
        plan = self._core.plan_simple(
            "health", timeout=timeout, deadline=deadline, max_retries=max_retries
        )
        status: HealthStatus = await self._run(plan)
        return status

    async def reload_model(
        self,
        *,
        admin_key: str | None = None,
        timeout: float | None = None,
        deadline: float | None = None,
        max_retries: int | None = None,
    ) -> ModelInfo:
        """Reload the model on the server (admin). See :meth:`JaguarClient.reload_model`.

        Args:
            admin_key: The server's admin token (default: the client's ``api_key``).
            timeout: Read timeout of each attempt in seconds.
            deadline: Total seconds for the call, retries included.
            max_retries: Retries for this call (default 0).

        Returns:
            The info of the newly loaded model.

        Raises:
            AuthenticationError: Missing or wrong admin token.
            ServerError: The reload failed; the previous model keeps serving.

        Example:
            >>> await client.reload_model(admin_key="s3cret")  # doctest: +SKIP
        """
        plan = self._core.plan_simple(
            "reload",
            timeout=timeout,
            deadline=deadline,
            max_retries=max_retries,
            admin_key=admin_key,
        )
        info: ModelInfo = await self._run(plan)
        return info

    def with_options(self, *, timeout: float | None = None, max_retries: int | None = None) -> Self:
        """A copy with other defaults, sharing this client's connection pool.

        Args:
            timeout: Read timeout of each attempt in seconds.
            max_retries: Retries of transient failures.

        Returns:
            The new client (closing it does not close the pool).

        Example:
            >>> await client.with_options(timeout=30).health()  # doctest: +SKIP
        """
        return self._from_core(self._core.copy(timeout=timeout, max_retries=max_retries))

    async def aclose(self) -> None:
        """Close the connection pool (or release the in-process model). Idempotent.

        Example:
            >>> await client.aclose()  # doctest: +SKIP
        """
        if self._core.mark_closed():
            await self._core.async_transport().aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return self._core.describe(type(self).__name__)
