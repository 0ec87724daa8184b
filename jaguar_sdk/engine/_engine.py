"""The engine: one FluxPipeline, loaded once, serving requests one at a time on its device."""

from __future__ import annotations

import gc
import os
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

import torch

from .._exceptions import NotReadyError
from .._images import GeneratedImage
from .._logging import get_logger
from .._request import GenerateRequest
from .._results import GenerationResult, ModelInfo, ModelRef, ProgressEvent, ProgressStage, Timings
from .._version import __version__
from ._device import dtype_name, parse_dtype, select_device, select_dtype
from ._encode import encode_image
from ._generate import decode_latents, denoise, sync
from ._limits import model_limits, warmup_request
from ._loading import apply_gpu_options, check_fp8_support, load_pipeline, move_pipeline
from ._models import resolve_model

__all__ = ["Engine"]

logger = get_logger("jaguar_sdk.engine")

ProgressCallback = Callable[[ProgressEvent], None]
ModelSpec = str | os.PathLike[str]


class Engine:
    """A loaded FluxPipeline that turns :class:`GenerateRequest` objects into images.

    Build one with :meth:`load` (load and move to the device) or :meth:`load_to_cpu` then
    :meth:`to_device` (the Modal memory-snapshot pattern: load on CPU before the snapshot, move
    to the GPU after restore). GPU work is serialised by one lock per engine; image encoding
    runs outside it, so a second request can start denoising while the first one encodes.

    Satisfies :class:`jaguar_sdk.server.EngineLike`.

    Attributes:
        pipeline: The ``diffusers.FluxPipeline`` (``None`` after :meth:`close`).
        device: The device the pipeline is on (``"cpu"`` until :meth:`to_device`).
        dtype: The weight dtype.
        model_ref: Which weights are loaded.
        load_timings: Seconds per loading stage: ``load_s``, ``to_device_s``, ``warmup_s``;
            plus ``to_device_gb``, the GB of weights :meth:`to_device` moved.

    Example:
        >>> from jaguar_sdk import GenerateRequest
        >>> engine = Engine.load("tiny", device="cpu")  # doctest: +SKIP
        >>> result = engine.generate(GenerateRequest(prompt="a cat", width=64, height=64, seed=1),
        ...                          request_id="req_1")
        >>> result.images[0].width, result.seed
        (64, 1)
    """

    def __init__(
        self, pipeline: Any, *, model_ref: ModelRef, dtype: torch.dtype, load_s: float = 0.0
    ) -> None:
        """Wrap an already loaded pipeline (on CPU, or on ``pipeline.device``).

        Most callers want :meth:`load` or :meth:`load_to_cpu` instead.

        Args:
            pipeline: A ``diffusers.FluxPipeline``.
            model_ref: Which weights it holds.
            dtype: Its weight dtype.
            load_s: Seconds spent loading it, reported by :meth:`info`.
        """
        self.pipeline: Any = pipeline
        self.model_ref = model_ref
        self.dtype = dtype
        self.device = str(getattr(pipeline, "device", "cpu"))
        self.load_timings: dict[str, float] = {"load_s": load_s}
        self.extra: dict[str, Any] = {}
        self.limits = model_limits(pipeline)
        self.extra["model_limits"] = self.limits.describe()
        self._lock = threading.Lock()

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def load_to_cpu(
        cls,
        model: ModelSpec = "tiny",
        *,
        dtype: str | None = None,
        model_ref: ModelRef | None = None,
        mmap: bool = True,
    ) -> Engine:
        """Load the pipeline into CPU memory (memory-mapped weights), without moving it.

        Args:
            model: ``"tiny"`` (built on first use) or a local diffusers folder.
            dtype: Weight dtype name (``"bfloat16"``, ``"float32"``...); ``None`` picks the one
                for the device :meth:`to_device` will most likely choose (bfloat16 when CUDA is
                available, else float32).
            model_ref: The ref to report (e.g. from the weight store); by default the one
                :func:`resolve_model` derives.
            mmap: Memory-map the weight files (default). ``False`` reads every weight into
                RAM, as a CPU memory snapshot needs (no mapping of the weight files survives
                the load).

        Returns:
            An engine on ``"cpu"``; call :meth:`to_device` next.

        Raises:
            ConfigurationError: If the model is unknown or its folder is not a Flux pipeline.

        Example:
            >>> engine = Engine.load_to_cpu("tiny")  # doctest: +SKIP
            >>> engine.to_device().warmup()
        """
        started = time.perf_counter()
        folder, resolved_ref = resolve_model(model)
        # With an explicit dtype, never query CUDA here: inside Modal's snap=True hook there is
        # no GPU, and touching CUDA before the snapshot can break CUDA after the restore.
        torch_dtype = parse_dtype(dtype) if dtype else select_dtype(select_device(None))
        pipe = load_pipeline(folder, torch_dtype, mmap=mmap)
        load_s = time.perf_counter() - started
        engine = cls(pipe, model_ref=model_ref or resolved_ref, dtype=torch_dtype, load_s=load_s)
        engine.device = "cpu"
        logger.info("loaded %s on cpu in %.2fs (%s)", folder, load_s, dtype_name(torch_dtype))
        return engine

    @classmethod
    def load(
        cls,
        model: ModelSpec = "tiny",
        *,
        device: str | None = None,
        dtype: str | None = None,
        model_ref: ModelRef | None = None,
        compile: bool = False,
        fuse_qkv: bool = False,
        channels_last: bool = False,
        fp8: bool = False,
    ) -> Engine:
        """Load the pipeline and move it to its device, ready to generate.

        Args:
            model: ``"tiny"`` (built on first use, no network) or a local diffusers folder.
            device: ``"cuda"``, ``"cpu"``...; ``None`` for CUDA when available, else CPU.
            dtype: Weight dtype name; ``None`` for bfloat16 on CUDA, float32 elsewhere.
            model_ref: The ref to report; by default the one :func:`resolve_model` derives.
            compile: Compile the transformer (GPU only; the first calls are slow).
            fuse_qkv: Fuse the attention q/k/v projections (GPU only).
            channels_last: Put the VAE in channels_last memory format (GPU only).
            fp8: Quantise the transformer to fp8 with torchao (opt-in; needs torchao and a GPU
                with compute capability >= 8.9; checked before anything is loaded).

        Returns:
            The ready engine.

        Raises:
            ConfigurationError: If the model or device is unusable, or ``fp8`` is asked for
                where it cannot run.

        Example:
            >>> engine = Engine.load("tiny", device="cpu")  # doctest: +SKIP
        """
        chosen = select_device(device)
        if fp8:
            check_fp8_support(chosen)
        engine = cls.load_to_cpu(
            model, dtype=dtype or dtype_name(select_dtype(chosen)), model_ref=model_ref
        )
        return engine.to_device(
            chosen, compile=compile, fuse_qkv=fuse_qkv, channels_last=channels_last, fp8=fp8
        )

    def to_device(
        self,
        device: str | None = None,
        *,
        compile: bool = False,
        fuse_qkv: bool = False,
        channels_last: bool = False,
        fp8: bool = False,
    ) -> Engine:
        """Move the pipeline to ``device`` and record the seconds as ``to_device_s``.

        On CUDA the weights go through pinned host memory with ``non_blocking`` copies (the
        fastest host-to-GPU path), then one synchronise; elsewhere a plain ``.to()``. The GB
        moved are recorded as ``to_device_gb``.

        Args:
            device: Target device; ``None`` for CUDA when available, else CPU.
            compile: Compile the transformer (only applied on CUDA).
            fuse_qkv: Fuse q/k/v projections (only applied on CUDA).
            channels_last: VAE in channels_last (only applied on CUDA).
            fp8: Quantise the transformer to fp8 with torchao (opt-in; before compiling).

        Returns:
            This engine, for chaining.

        Raises:
            ConfigurationError: If the device is not available, or ``fp8`` was asked for but
                the device is not CUDA, its compute capability is below 8.9 or torchao is
                missing (checked before any weight moves).
            NotReadyError: If the engine was closed.
        """
        pipe = self._pipe()
        chosen = select_device(device)
        if fp8:
            check_fp8_support(chosen)
        started = time.perf_counter()
        with self._lock:
            moved = move_pipeline(pipe, chosen)
            if chosen.startswith("cuda"):
                self.extra.update(
                    apply_gpu_options(
                        pipe,
                        fuse_qkv=fuse_qkv,
                        channels_last=channels_last,
                        compile=compile,
                        fp8=fp8,
                    )
                )
                self.extra["pinned_transfer"] = moved["pinned"]
                self.extra["gpu"] = torch.cuda.get_device_name(torch.device(chosen))
            sync(chosen)
            self.device = chosen
        self.load_timings["to_device_s"] = time.perf_counter() - started
        self.load_timings["to_device_gb"] = moved["bytes"] / 1e9
        return self

    def warmup(self, *, serving_shape: bool = False) -> None:
        """Run one generation to warm kernels and caches.

        Args:
            serving_shape: At the default serving shape (1024x1024, 4 steps) instead of the
                cheapest one (64x64, 1 step); use it after ``compile=True``, which compiles
                again for every new input shape.

        Records the seconds as ``warmup_s`` in :attr:`load_timings`.
        """
        started = time.perf_counter()
        request = warmup_request(serving_shape=serving_shape)
        self.generate(request, request_id="warmup")
        self.load_timings["warmup_s"] = time.perf_counter() - started

    # --- serving ---------------------------------------------------------------------------
    def generate(
        self,
        request: GenerateRequest,
        *,
        request_id: str,
        on_progress: ProgressCallback | None = None,
    ) -> GenerationResult:
        """Generate the images of one request.

        Args:
            request: A validated request.
            request_id: The id reported in the result and progress events.
            on_progress: Called (on this thread) with ``running`` (step k of n),
                ``decoding``, ``encoding`` and ``done`` events. ``queued`` is the job store's:
                it reports a job queued once, when it accepts it.

        Returns:
            The encoded images, the seed used (random when ``request.seed`` is ``None``),
            per-stage timings and the model ref.

        Raises:
            NotReadyError: If the engine was closed.
            Exception: Whatever the pipeline raises for a request it cannot run (the service
                turns it into a ``GenerationError``).
        """
        arrived = time.perf_counter()
        seed = request.seed if request.seed is not None else secrets.randbelow(2**32)

        def emit(stage: ProgressStage, step: int = 0, total: int = request.steps) -> None:
            if on_progress is not None:
                on_progress(
                    ProgressEvent(stage=stage, step=step, total_steps=total, request_id=request_id)
                )

        with self._lock:
            locked = time.perf_counter()
            pipe = self._pipe()
            run = self.limits.apply(request)
            latents = denoise(pipe, run, seed, lambda k, n: emit("running", k, n))
            sync(self.device)
            denoised = time.perf_counter()
            emit("decoding", request.steps)
            pictures = decode_latents(pipe, latents, request.width, request.height)
            decoded = time.perf_counter()
        emit("encoding", request.steps)
        images = [
            GeneratedImage(
                data=encode_image(picture, request.output_format, request.quality),
                format=request.output_format,
                width=picture.width,
                height=picture.height,
            )
            for picture in pictures
        ]
        finished = time.perf_counter()
        emit("done", request.steps)
        timings = Timings(
            queue_s=locked - arrived,
            load_s=0.0,
            inference_s=denoised - locked,
            decode_s=decoded - denoised,
            encode_s=finished - decoded,
            total_s=finished - arrived,
        )
        return GenerationResult(
            request_id=request_id,
            prompt=request.prompt,
            seed=seed,
            images=images,
            timings=timings,
            model=self.model_ref,
        )

    def info(self) -> ModelInfo:
        """What is loaded, where, and how long loading took.

        Returns:
            Model ref, device, dtype, whether loaded, ``load_timings`` (``load_s``,
            ``to_device_s``, ``warmup_s`` where done), the jaguar_sdk version and extras
            (torch version, GPU name and options where applicable).
        """
        return ModelInfo(
            model=self.model_ref,
            device=self.device,
            dtype=dtype_name(self.dtype),
            loaded=self.pipeline is not None,
            load_timings=dict(self.load_timings),
            version=__version__,
            extra={"torch": torch.__version__, **self.extra},
        )

    def close(self) -> None:
        """Drop the pipeline and free the CUDA cache where there is one. Idempotent.

        A generation already running keeps its own reference and finishes normally.
        """
        self.pipeline = None
        gc.collect()
        # is_initialized() asks no driver (torch/cuda/__init__.py); is_available() would query
        # the device count, which must not happen before a memory snapshot (_snapshot.py).
        if torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
            torch.cuda.empty_cache()

    def _pipe(self) -> Any:
        pipe = self.pipeline
        if pipe is None:
            raise NotReadyError("The engine was closed; load the model again.")
        return pipe

    def __repr__(self) -> str:
        return (
            f"Engine(model={self.model_ref.id!r}, device={self.device!r}, "
            f"dtype={dtype_name(self.dtype)!r}, loaded={self.pipeline is not None})"
        )
