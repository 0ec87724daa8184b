"""The engine: one FluxPipeline, loaded once, serving requests one at a time on its device."""

from __future__ import annotations

import gc
import importlib.util
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
from ._img2img import Mode, derived_pipeline, prepare_inputs
from ._limits import model_limits, warmup_request
from ._loading import apply_gpu_options, check_fp8_support, load_pipeline, move_pipeline
from ._lora import DEFAULT_MAX_CACHED_ADAPTERS, AdapterSource, LoraManager
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

    A request with an ``image`` runs the image-to-image pipeline, with a ``mask`` too the
    inpainting one: both are built once with ``from_pipe`` and share every weight with the
    text-to-image pipeline. A request's ``loras`` are applied for that request only
    (:class:`~jaguar_sdk.engine._lora.LoraManager`), from the ``adapters`` source.

    Satisfies :class:`jaguar_sdk.server.EngineLike`.

    Attributes:
        pipeline: The ``diffusers.FluxPipeline`` (``None`` after :meth:`close`).
        loras: The LoRA adapters of this engine (source, LRU cache, hotswap slots).
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
        self,
        pipeline: Any,
        *,
        model_ref: ModelRef,
        dtype: torch.dtype,
        load_s: float = 0.0,
        adapters: AdapterSource | None = None,
        max_cached_adapters: int = DEFAULT_MAX_CACHED_ADAPTERS,
    ) -> None:
        """Wrap an already loaded pipeline (on CPU, or on ``pipeline.device``).

        Most callers want :meth:`load` or :meth:`load_to_cpu` instead.

        Args:
            pipeline: A ``diffusers.FluxPipeline``.
            model_ref: Which weights it holds.
            dtype: Its weight dtype.
            load_s: Seconds spent loading it, reported by :meth:`info`.
            adapters: Where LoRA adapter files come from (``jaguar_sdk.weights.AdapterStore``);
                ``None`` refuses requests with ``loras``.
            max_cached_adapters: LoRA adapters kept loaded (least recently used evicted).
        """
        self.pipeline: Any = pipeline
        self.model_ref = model_ref
        self.dtype = dtype
        self.device = str(getattr(pipeline, "device", "cpu"))
        self.load_timings: dict[str, float] = {"load_s": load_s}
        self.extra: dict[str, Any] = {}
        self.limits = model_limits(pipeline)
        self.extra["model_limits"] = self.limits.describe()
        self.loras = LoraManager(adapters, max_cached=max_cached_adapters)
        if importlib.util.find_spec("peft") is None:
            self.loras.unsupported = (
                "LoRA adapters need peft, which is not installed on this server "
                "(pip install 'jaguar-sdk[engine]')."
            )
        self._derived: dict[Mode, Any] = {}
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
        adapters: AdapterSource | None = None,
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
            adapters: Where LoRA adapter files come from (see :meth:`__init__`).

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
        engine = cls(
            pipe,
            model_ref=model_ref or resolved_ref,
            dtype=torch_dtype,
            load_s=load_s,
            adapters=adapters,
        )
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
        adapters: AdapterSource | None = None,
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
            adapters: Where LoRA adapter files come from (``jaguar_sdk.weights.AdapterStore``);
                ``None`` refuses requests with ``loras``.

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
            model,
            dtype=dtype or dtype_name(select_dtype(chosen)),
            model_ref=model_ref,
            adapters=adapters,
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
            compile: Compile the transformer (only applied on CUDA). LoRA adapters then swap
                into slots prepared before compiling (hotswap), so switching never recompiles.
            fuse_qkv: Fuse q/k/v projections (only applied on CUDA; LoRA adapters are then
                refused: they target the unfused layers).
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
            self._derived.clear()  # rebuilt on first use, over the components as they are now
            if chosen.startswith("cuda"):
                if fuse_qkv or fp8:
                    self.loras.unsupported = (
                        "this server runs with fused q/k/v projections or fp8 layers, which "
                        "LoRA adapters cannot target; it serves requests without loras."
                    )
                self.extra.update(
                    apply_gpu_options(
                        pipe,
                        fuse_qkv=fuse_qkv,
                        channels_last=channels_last,
                        compile=compile,
                        fp8=fp8,
                        before_compile=self._prepare_hotswap,
                    )
                )
                self.extra["pinned_transfer"] = moved["pinned"]
                self.extra["gpu"] = torch.cuda.get_device_name(torch.device(chosen))
            sync(chosen)
            self.device = chosen
        self.load_timings["to_device_s"] = time.perf_counter() - started
        self.load_timings["to_device_gb"] = moved["bytes"] / 1e9
        return self

    def _prepare_hotswap(self, pipe: Any) -> None:
        """Before compiling: LoRA slots, so adapters swap in without recompiling."""
        if self.loras.source is not None and self.loras.unsupported is None:
            self.loras.enable_hotswap(pipe)

    def _pipeline(self, pipe: Any, mode: Mode) -> Any:
        """The pipeline for a request's mode; image-to-image and inpainting share ``pipe``."""
        if mode == "text":
            return pipe
        derived = self._derived.get(mode)
        if derived is None:
            derived = self._derived[mode] = derived_pipeline(pipe, mode)
        return derived

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
            per-stage timings and the model ref. The same seed and inputs give the same bytes.

        Raises:
            NotReadyError: If the engine was closed.
            InvalidRequestError: A LoRA adapter that does not fit the model, or that the
                adapter source refuses (the engine serves on unchanged).
            Exception: Whatever the pipeline raises for a request it cannot run (the service
                turns it into a ``GenerationError``).
        """
        arrived = time.perf_counter()
        seed = request.seed if request.seed is not None else secrets.randbelow(2**32)
        run = self.limits.apply(request)
        # Before the lock: an adapter's first use may download it; images decode on the CPU.
        adapters = self.loras.resolve(run.loras)
        inputs = prepare_inputs(run)
        steps = [run.steps]  # image-to-image runs about strength x steps of them

        def emit(stage: ProgressStage, step: int = 0) -> None:
            if on_progress is not None:
                on_progress(
                    ProgressEvent(
                        stage=stage, step=step, total_steps=steps[0], request_id=request_id
                    )
                )

        def on_step(done: int, total: int) -> None:
            steps[0] = total
            emit("running", done)

        with self._lock:
            locked = time.perf_counter()
            pipe = self._pipe()
            with self.loras.applied(pipe, adapters):
                pipeline = self._pipeline(pipe, inputs.mode)
                latents = denoise(pipeline, run, seed, on_step, inputs)
            sync(self.device)
            denoised = time.perf_counter()
            emit("decoding", steps[0])
            pictures = decode_latents(pipe, latents, inputs.width, inputs.height)
            decoded = time.perf_counter()
        emit("encoding", steps[0])
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
        emit("done", steps[0])
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
            extra={"torch": torch.__version__, **self.extra, "lora": self.loras.describe()},
        )

    def close(self) -> None:
        """Drop the pipeline and free the CUDA cache where there is one. Idempotent.

        A generation already running keeps its own reference and finishes normally.
        """
        self.pipeline = None
        self._derived.clear()
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
