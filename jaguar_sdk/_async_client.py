"""``AsyncJaguarClient``: the client, awaited. The source of ``JaguarClient``.

``jaguar_sdk/_client.py`` is generated from this file by ``scripts/unasync.py`` (``await``
dropped, ``Async*`` names mapped to their blocking twins, ``_async_*`` modules to ``_*``); a test
fails when the generated file is stale. All logic that does not wait on I/O (configuration,
validation, the retry policy, parsing) lives in :mod:`jaguar_sdk._core`, shared by both.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tenacity import AsyncRetrying

from . import _constants as C
from ._async_job import AsyncJob
from ._async_pool import iter_bounded
from ._core import ClientCore, ManyItem, ManyPlan, Plan, ProgressBar
from ._exceptions import JaguarError, JaguarTimeoutError, NotFoundError
from ._inputs import aresolve_image_urls, aresolve_many_urls
from ._request import GenerateRequest
from ._results import GenerationResult, HealthStatus, ModelInfo
from ._transports._base import AsyncTransport, Reply

if TYPE_CHECKING:
    import httpx
    from typing_extensions import Self, Unpack

    from ._request import CallOptions, GenerateManyOptions, GenerateOptions, SubmitOptions

__all__ = ["AsyncJaguarClient"]


class AsyncJaguarClient:
    """Generate images with Shuttle Jaguar over HTTP, on Modal, or in this process (asyncio).

    Settings resolve in order: these arguments, then environment variables (``JAGUAR_BASE_URL``,
    ``JAGUAR_API_KEY``, ``JAGUAR_MODEL``, ``JAGUAR_MODAL_APP``, ``JAGUAR_MODAL_CLASS``,
    ``JAGUAR_MODAL_ENVIRONMENT``, ``JAGUAR_TIMEOUT``, ``JAGUAR_MAX_RETRIES``), then the user config
    file (``$JAGUAR_CONFIG``, ``$XDG_CONFIG_HOME/jaguar/config.json`` or
    ``~/.config/jaguar/config.json``), then defaults. Exactly one way of reaching the model must
    be chosen: ``base_url`` (HTTP), ``modal_app`` (Modal) or ``model`` (in-process). A token
    from the config file is sent only to the server (origin) it was saved for.

    Use it from the event loop that created it (its connection pool belongs to that loop).

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
        http_client: An ``httpx.AsyncClient`` to use for HTTP (proxies, certificates...); not
            closed by this client.
        transport: A ready :class:`~jaguar_sdk.AsyncTransport` (custom backends, tests); it is
            the backend, and closed with the client.
        headers: Extra HTTP headers sent with every request.
        config_path: Read this config file instead of the default one.

    Raises:
        ConfigurationError: Nothing configured (the message shows the three ways), two ways at
            once, or a malformed setting.

    Example:
        >>> async with AsyncJaguarClient(base_url="http://127.0.0.1:8000") as client:
        ...     result = await client.generate("a jaguar in the rain", seed=7)
        ...     result.save("jaguar.jpg")  # doctest: +SKIP
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
            >>> async with AsyncJaguarClient.local(model="tiny") as client:  # doctest: +SKIP
            ...     (await client.generate("a cat", width=64, height=64)).save("cat.jpg")
        """
        return cls._from_core(ClientCore.create("async", model=model, device=device, **options))

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
            >>> client = AsyncJaguarClient.from_modal("shuttle-jaguar", gpu="H200")
            ... # doctest: +SKIP
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

    @classmethod
    def _from_core(cls, core: ClientCore) -> Self:
        client = object.__new__(cls)
        client._core = core
        return client

    # --- operations --------------------------------------------------------------------------
    async def _run(self, plan: Plan) -> Any:
        # The first attempt runs outside tenacity (its loop is ~1% of a loopback call); a
        # retryable failure hands the rest of the call over to it.
        reply: Reply | None = None
        pause = 0.0
        try:
            reply = await self._send(plan)
        except JaguarError as exc:
            pause = self._core.policy.after_first_attempt(plan, exc)  # or raises
        if reply is None:  # retried outside the except block: no chained tracebacks
            await asyncio.sleep(pause)
            retried: Reply = await AsyncRetrying(**self._core.retry_kwargs)(self._send, plan)
            reply = retried
        return self._core.parse(plan, reply)

    async def _send(self, plan: Plan) -> Reply:
        return await self._core.async_transport().send(plan.call)

    async def generate(
        self, prompt: str | GenerateRequest, **options: Unpack[GenerateOptions]
    ) -> GenerationResult:
        """Generate images from a prompt.

        The arguments are validated before any network call; only the fields you set are
        sent (the server's defaults apply to the rest). One idempotency key is used for every
        retry of this call, so the server generates at most once.

        Image to image: pass ``image`` (bytes, a path, a PIL image, or an ``https`` URL, which
        this client fetches: a server never does) and ``strength``; inpainting: also ``mask``
        (white repaints). ``loras`` applies LoRA adapters to this call only, e.g.
        ``loras=["owner/style-lora:0.8"]``.

        Args:
            prompt: What to draw, or a complete :class:`GenerateRequest` (keyword fields then
                override its fields).
            **options: Request fields (``width``, ``height``, ``steps``, ``guidance_scale``,
                ``seed``, ``num_images``, ``output_format``, ``quality``,
                ``max_sequence_length``, ``image``, ``mask``, ``strength``, ``loras``: see
                :class:`GenerateRequest` for each range) and call options (``timeout``,
                ``deadline``, ``max_retries``, ``request_id``, ``idempotency_key``: see
                :class:`~jaguar_sdk.GenerateOptions`).

        Returns:
            The images with seed, timings, model and request id.

        Raises:
            InvalidRequestError: A field is out of range, an input image is invalid or its URL
                refused, or an adapter does not fit the model (``.field`` names it).
            AuthenticationError: The server refused the token.
            JaguarTimeoutError: An attempt timed out after the retries, or the deadline passed.
            JaguarConnectionError: The server could not be reached after the retries.
            GenerationError: The model failed on a valid request.
            TypeError: An unknown keyword argument.

        Example:
            >>> result = await client.generate("a jaguar", seed=7, width=768)  # doctest: +SKIP
            >>> result.save("jaguar.jpg")  # doctest: +SKIP
            >>> await client.generate("a jaguar, oil painting", image="photo.jpg", strength=0.6)
            ... # doctest: +SKIP
        """
        fields = await aresolve_image_urls(options)
        result: GenerationResult = await self._run(
            self._core.plan_generate("generate", prompt, fields)
        )
        return result

    async def submit(
        self, prompt: str | GenerateRequest, **options: Unpack[SubmitOptions]
    ) -> AsyncJob:
        """Submit a generation as a job and return at once with a handle on it.

        The job runs on the server (``POST /v1/jobs``), on Modal (``.spawn()``: results are
        kept for days) or in-process; poll it, follow its progress, cancel it, or pick it up
        in another process with ``get_job(job.id)``.

        Args:
            prompt: What to draw, or a complete :class:`GenerateRequest`.
            **options: As for :meth:`generate`, plus ``webhook_url`` (HTTP only: where the
                server posts the signed result when the job finishes; verify it with
                :func:`jaguar_sdk.webhooks.verify`). Retries of the submit call reuse one
                idempotency key: never two jobs.

        Returns:
            The job handle.

        Raises:
            InvalidRequestError: A field is out of range, or ``webhook_url`` is malformed or
                given on a transport that cannot post webhooks.
            RateLimitError: The server's job store is full (code ``job_store_full``).
            JaguarError: Any other failure.

        Example:
            >>> job = await client.submit("a jaguar", seed=7)  # doctest: +SKIP
            >>> (await job.wait(300)).state  # doctest: +SKIP
            'succeeded'
        """
        fields = await aresolve_image_urls(options)
        status = await self._run(self._core.plan_generate("submit", prompt, fields))
        return AsyncJob(self, status)

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
            >>> job = await client.get_job("job_3f2a...")  # doctest: +SKIP
        """
        status = await self._run(self._core.plan_job("job_status", job_id, timeout=timeout))
        return AsyncJob(self, status)

    async def generate_many(
        self,
        prompts_or_requests: Iterable[ManyItem],
        *,
        concurrency: int = 4,
        progress: bool = False,
        use_jobs: bool | None = None,
        **options: Unpack[GenerateManyOptions],
    ) -> list[GenerationResult | JaguarError]:
        """Generate for many prompts concurrently; one result or one error per item, in order.

        Errors are returned in place, not raised, so one bad item never loses the others.
        Up to ``concurrency`` items are in flight at once, and the next starts the moment one
        finishes, so the server always has work queued: from ``concurrency=2`` a batch runs at
        the server's own pace (see ``docs/performance.md``). Each item is a direct
        ``generate`` call by default, the cheapest way on every built-in transport.

        Args:
            prompts_or_requests: Prompts, :class:`GenerateRequest` objects, or dicts of request
                fields.
            concurrency: Items in flight at once.
            progress: Show a tqdm progress bar: one tick per finished item, in the order they
                finish, and on jobs the running job's step next to it (needs tqdm: the
                ``progress`` or ``engine`` extra).
            use_jobs: ``None`` (default): what the transport does best (direct calls on the
                built-in ones); ``True``: run every item as a job (``submit``, a long-polled
                wait, the result), e.g. behind a proxy that cuts long requests; ``False``:
                direct calls. On jobs an item waits up to its ``deadline`` (else ``timeout``,
                else the client's timeout), then its job is cancelled and the item is a
                :class:`JaguarTimeoutError`.
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
            >>> results = await client.generate_many(["a cat", "a dog"], width=512)
            ... # doctest: +SKIP
        """
        done: dict[int, GenerationResult | JaguarError] = {}
        async for index, outcome in self._iter_many(
            prompts_or_requests, concurrency, use_jobs, progress, options
        ):
            done[index] = outcome
        return [done[index] for index in range(len(done))]  # every item is answered once

    def generate_iter(
        self,
        prompts_or_requests: Iterable[ManyItem],
        *,
        concurrency: int = 4,
        progress: bool = False,
        use_jobs: bool | None = None,
        **options: Unpack[GenerateManyOptions],
    ) -> AsyncIterator[tuple[int, GenerationResult | JaguarError]]:
        """Like :meth:`generate_many`, but hand out each item the moment it finishes.

        Yields ``(index, result or error)`` in the order items finish; ``index`` is the item's
        place in ``prompts_or_requests``. Items that fail validation come first (they never
        leave the client). Leaving the loop early stops starting new items.

        Args:
            prompts_or_requests: As for :meth:`generate_many`.
            concurrency: Items in flight at once.
            progress: Show a tqdm progress bar (when tqdm is installed).
            use_jobs: As for :meth:`generate_many`.
            **options: As for :meth:`generate_many`.

        Returns:
            An iterator of ``(index, GenerationResult or JaguarError)`` pairs.

        Raises:
            TypeError: An unknown option, or a single string instead of a list (at the call,
                before any item runs).
            ValueError: ``concurrency`` below 1.
            ConfigurationError: ``use_jobs=True`` on a transport without jobs.

        Example:
            >>> async for index, outcome in client.generate_iter(prompts):  # doctest: +SKIP
            ...     if isinstance(outcome, JaguarError):
            ...         print(index, "failed:", outcome)
            ...     else:
            ...         outcome.save(f"out/{index}.jpg")
        """
        self._core.check_many(
            prompts_or_requests, concurrency=concurrency, use_jobs=use_jobs, options=options
        )
        return self._iter_many(prompts_or_requests, concurrency, use_jobs, progress, options)

    async def _iter_many(
        self,
        items: Iterable[ManyItem],
        concurrency: int,
        use_jobs: bool | None,
        progress: bool,
        options: Mapping[str, Any],
    ) -> AsyncIterator[tuple[int, GenerationResult | JaguarError]]:
        prepared = await aresolve_many_urls(items)  # image URLs are fetched by the client
        fields = await aresolve_image_urls(options)
        batch = self._core.plan_many(
            prepared, concurrency=concurrency, use_jobs=use_jobs, options=fields
        )
        async for outcome in self._run_many(batch, progress):
            yield outcome

    async def _run_many(
        self, batch: ManyPlan, progress: bool
    ) -> AsyncIterator[tuple[int, GenerationResult | JaguarError]]:
        bar = ProgressBar(len(batch.items), progress)
        jobs = [batch.jobs]  # a server without the job routes switches the rest to direct
        options = batch.call_options

        async def direct(item: GenerateRequest) -> GenerationResult:
            result: GenerationResult = await self._run(
                self._core.plan_request(item, "generate", options)
            )
            return result

        async def on_job(item: GenerateRequest) -> GenerationResult:
            try:
                status = await self._run(self._core.plan_request(item, "submit", options))
            except NotFoundError:
                if not batch.fall_back:
                    raise
                jobs[0] = False
                return await direct(item)
            job = AsyncJob(self, status)
            try:
                await job.wait(batch.wait_s, on_progress=bar.note if bar.enabled else None)
            except JaguarTimeoutError:
                with contextlib.suppress(JaguarError):
                    await job.cancel()
                raise
            plan = self._core.plan_job("job_result", job.id, timeout=options.get("timeout"))
            result: GenerationResult = await self._run(plan)
            return result

        async def one(item: GenerateRequest) -> GenerationResult | JaguarError:
            try:
                return await (on_job(item) if jobs[0] else direct(item))
            except JaguarError as exc:
                return exc

        valid: list[tuple[int, GenerateRequest]] = []
        try:
            for index, item in enumerate(batch.items):
                if isinstance(item, JaguarError):
                    bar.update(False)
                    yield index, item
                else:
                    valid.append((index, item))
            async for position, outcome in iter_bounded(
                one, [item for _, item in valid], batch.concurrency
            ):
                bar.update(not isinstance(outcome, JaguarError))
                yield valid[position][0], outcome
        finally:
            bar.close()

    async def info(self, **options: Unpack[CallOptions]) -> ModelInfo:
        """What model is served, on which device, and how it was loaded.

        Args:
            **options: Call options (``timeout``, ``deadline``, ``max_retries``).

        Returns:
            The model info.

        Raises:
            JaguarError: The mapped failure (e.g. :class:`NotReadyError` after the retries).

        Example:
            >>> (await client.info()).model.id  # doctest: +SKIP
            'shuttleai/shuttle-jaguar'
        """
        info: ModelInfo = await self._run(self._core.plan_simple("info", options))
        return info

    async def health(self, **options: Unpack[CallOptions]) -> HealthStatus:
        """Liveness and readiness of the server or deployment.

        Args:
            **options: Call options (``timeout``, ``deadline``, ``max_retries``).

        Returns:
            ``status`` (``"ok"``, ``"loading"``, ``"error"``) and ``ready``.

        Raises:
            JaguarError: The server could not be reached, or answered an error.

        Example:
            >>> (await client.health()).ready  # doctest: +SKIP
            True
        """
        status: HealthStatus = await self._run(self._core.plan_simple("health", options))
        return status

    async def reload_model(
        self, *, admin_key: str | None = None, **options: Unpack[CallOptions]
    ) -> ModelInfo:
        """Reload the model on the server (admin); requests keep being served meanwhile.

        Not retried unless ``max_retries`` is given: a reload that timed out may still run.

        Args:
            admin_key: The server's admin token (default: the client's ``api_key``).
            **options: Call options (``timeout``, ``deadline``, ``max_retries``; default 0).

        Returns:
            The info of the newly loaded model.

        Raises:
            AuthenticationError: Missing or wrong admin token (403: admin routes disabled).
            ServerError: The reload failed; the previous model keeps serving.

        Example:
            >>> (await client.reload_model(admin_key="s3cret")).loaded  # doctest: +SKIP
            True
        """
        plan = self._core.plan_simple("reload", options, admin_key=admin_key)
        info: ModelInfo = await self._run(plan)
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
            >>> await client.with_options(max_retries=5).generate("a cat")  # doctest: +SKIP
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
