"""Loading a FluxPipeline from a local folder, and the optional GPU speed-ups."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .._exceptions import ConfigurationError
from .._logging import get_logger
from ._quiet import flux_pipeline_class, quiet_progress_bars

__all__ = [
    "FP8_MIN_CAPABILITY",
    "apply_gpu_options",
    "check_fp8_support",
    "configure_compile_cache",
    "load_pipeline",
    "move_pipeline",
    "quantize_fp8",
]

#: fp8 tensor cores: Ada (8.9) and Hopper (9.0) or newer.
FP8_MIN_CAPABILITY = (8, 9)

logger = get_logger("jaguar_sdk.engine")


def load_pipeline(folder: Path, dtype: torch.dtype, *, mmap: bool = True) -> Any:
    """Load a FluxPipeline on CPU from a local diffusers folder, never touching the network.

    With ``mmap`` (the default) weights are memory-mapped (safetensors): for a matching dtype
    on CPU the parameters are zero-copy views of the files, and the bytes are read on first use.
    Without it every weight is read into process memory and no file stays mapped, which a CPU
    memory snapshot needs: a mapping of a Volume file is not the weights, and it breaks if the
    file is renamed (see ``_load_kwargs_without_mmap``).

    Args:
        folder: A folder with ``model_index.json`` and the component sub-folders.
        dtype: The weight dtype.
        mmap: Memory-map the weight files (``False``: read them fully into RAM).

    Returns:
        The ``diffusers.FluxPipeline`` (progress bars disabled).

    Raises:
        ConfigurationError: If the folder is not a loadable Flux pipeline.
    """
    flux_pipeline: Any = flux_pipeline_class()
    try:
        with quiet_progress_bars():
            extra = {} if mmap else _load_kwargs_without_mmap(folder, dtype)
            pipe = flux_pipeline.from_pretrained(
                str(folder), dtype=dtype, local_files_only=True, **extra
            )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigurationError(
            f"could not load a FluxPipeline from {str(folder)!r}: {type(exc).__name__}: {exc}. "
            "Expected a folder in diffusers layout (model_index.json plus transformer/, vae/, "
            "text_encoder/, text_encoder_2/, tokenizer/, tokenizer_2/, scheduler/)."
        ) from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _load_kwargs_without_mmap(folder: Path, dtype: torch.dtype) -> dict[str, Any]:
    """``from_pretrained`` arguments that read every weight file fully into RAM.

    diffusers' ``disable_mmap=True`` reaches only its own models (``pipeline_loading_utils.py``
    ``load_sub_model`` sets ``loading_kwargs["disable_mmap"]`` when ``is_diffusers_model``;
    ``model_loading_utils.load_state_dict`` then reads ``safetensors.torch.load(f.read())``
    instead of ``load_file``, which maps). The text encoders are transformers models, so they are
    loaded here with transformers' own ``disable_mmap=True`` (``modeling_utils.py``
    ``from_pretrained``: "safetensors files are read fully into memory instead of being
    memory-mapped") and passed in as components.
    """
    transformers: Any = importlib.import_module("transformers")
    index = json.loads((folder / "model_index.json").read_text(encoding="utf-8"))
    extra: dict[str, Any] = {"disable_mmap": True}
    for name, spec in index.items():
        if not (isinstance(spec, list) and len(spec) == 2 and spec[0] == "transformers"):
            continue
        model_class: Any = getattr(transformers, str(spec[1]), None)
        if not _is_subclass(model_class, transformers.PreTrainedModel):
            continue  # tokenizers and processors hold no weights
        extra[name] = model_class.from_pretrained(
            str(folder / name), dtype=dtype, local_files_only=True, disable_mmap=True
        )
    return extra


def _is_subclass(candidate: Any, base: Any) -> bool:
    return inspect.isclass(candidate) and issubclass(candidate, base)


def move_pipeline(pipe: Any, device: str) -> dict[str, Any]:
    """Move every component of the pipeline to ``device`` (in place), as fast as the host allows.

    On CUDA each tensor is copied through page-locked (pinned) host memory with
    ``non_blocking=True``, one sub-module at a time (so pinned memory in flight stays small;
    the caching host allocator reuses a pinned block only once its copy has finished), then
    ``torch.cuda.synchronize()`` waits for the copies. Pageable ``.to("cuda")`` copies run well
    below the pinned rate (~55 GB/s on an H100's PCIe Gen5 link, perf.md section 2c). Elsewhere
    (CPU, MPS) it is a plain ``pipe.to(device)``.

    Args:
        pipe: The FluxPipeline.
        device: The target device.

    Returns:
        ``{"bytes": <bytes of weights that changed device>, "pinned": <bool>}``.
    """
    import torch

    target = torch.device(device)
    moved = 0
    pinned = target.type == "cuda"
    # Tied weights are shared objects: copy each once (values keep them alive, so ids stay unique).
    seen: dict[int, Any] = {}
    for component in pipe.components.values():
        if not isinstance(component, torch.nn.Module):
            continue
        for module in component.modules():
            for param in module.parameters(recurse=False):
                if id(param) not in seen and param.device.type != target.type:
                    seen[id(param)] = param
                    moved += param.numel() * param.element_size()
                    if pinned:
                        param.data = _pinned_copy(param.data, target)
            for name, buffer in list(module.named_buffers(recurse=False)):
                if id(buffer) not in seen and buffer.device.type != target.type:
                    seen[id(buffer)] = buffer
                    moved += buffer.numel() * buffer.element_size()
                    if pinned:
                        setattr(module, name, _pinned_copy(buffer, target))
    pipe.to(device)  # the rest (and everything, off CUDA); a no-op for moved tensors
    if pinned:
        torch.cuda.synchronize(target)
    return {"bytes": moved, "pinned": pinned}


def _pinned_copy(tensor: Any, target: Any) -> Any:
    """``tensor`` (CPU) on ``target`` (CUDA) via pinned memory; the copy is asynchronous."""
    source = tensor if tensor.is_pinned() else tensor.pin_memory()
    return source.to(target, non_blocking=True)


def check_fp8_support(device: str) -> None:
    """Raise unless ``device`` can run torchao's fp8 dynamic quantisation.

    Args:
        device: The device the pipeline will run on.

    Raises:
        ConfigurationError: If ``device`` is not CUDA, the GPU's compute capability is below
            8.9 (fp8 tensor cores: Ada/Hopper or newer), or torchao is not installed.
    """
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        raise ConfigurationError(
            f"fp8=True needs a CUDA GPU with compute capability >= 8.9 (e.g. H100, L4, L40S); "
            f"the device is {device!r}. Drop fp8 or run on such a GPU."
        )
    capability = tuple(torch.cuda.get_device_capability(torch.device(device)))
    if capability < FP8_MIN_CAPABILITY:
        name = torch.cuda.get_device_name(torch.device(device))
        raise ConfigurationError(
            f"fp8=True needs a GPU with compute capability >= 8.9 (Ada/Hopper: H100, L4, L40S); "
            f"{name} has {capability[0]}.{capability[1]}. Drop fp8 (bfloat16 works everywhere)."
        )
    if importlib.util.find_spec("torchao") is None:
        raise ConfigurationError(
            "fp8=True needs torchao, which is not installed: `pip install torchao` (a build "
            f"matching torch {torch.__version__}), or drop fp8."
        )


def quantize_fp8(pipe: Any) -> str:
    """Quantise the transformer's linear layers to fp8 (dynamic activations, fp8 weights).

    Uses torchao's ``Float8DynamicActivationFloat8WeightConfig`` (newer torchao) or
    ``float8_dynamic_activation_float8_weight`` (older). Call :func:`check_fp8_support` first,
    and compile after quantising.

    Returns:
        What was applied, for :meth:`Engine.info`'s ``extra``.

    Raises:
        ConfigurationError: If torchao has neither API.
    """
    quantization: Any = importlib.import_module("torchao.quantization")
    config_class = getattr(quantization, "Float8DynamicActivationFloat8WeightConfig", None)
    factory = getattr(quantization, "float8_dynamic_activation_float8_weight", None)
    if config_class is not None:
        config, label = config_class(), "Float8DynamicActivationFloat8WeightConfig"
    elif factory is not None:
        config, label = factory(), "float8_dynamic_activation_float8_weight"
    else:
        raise ConfigurationError(
            "fp8=True: this torchao has no float8 dynamic quantisation API; upgrade torchao."
        )
    quantization.quantize_(pipe.transformer, config)
    logger.info("transformer quantised to fp8 (%s)", label)
    return f"torchao {label}"


def configure_compile_cache(
    root: str | os.PathLike[str], *, overwrite: bool = True
) -> dict[str, str]:
    """Point the torch.compile caches (inductor FX graphs, autotuning, Triton kernels) at ``root``.

    Call it before the first compilation, with ``root`` on persistent storage (on Modal, a
    folder on the Volume, e.g. ``/vol/compile-cache``; commit the Volume after warm-up so the
    next container starts with the compiled artefacts). Sets ``TORCHINDUCTOR_CACHE_DIR`` to
    ``root/inductor`` and ``TRITON_CACHE_DIR`` to ``root/triton`` and creates both folders.

    Args:
        root: The cache root.
        overwrite: Replace values already set in the environment (default); with ``False``
            keep them.

    Returns:
        The environment variables as set now.

    Example:
        >>> configure_compile_cache("/vol/compile-cache")  # doctest: +SKIP
        {'TORCHINDUCTOR_CACHE_DIR': '/vol/compile-cache/inductor', 'TRITON_CACHE_DIR': ...}
    """
    base = Path(root).expanduser().absolute()
    result: dict[str, str] = {}
    for variable, sub in (("TORCHINDUCTOR_CACHE_DIR", "inductor"), ("TRITON_CACHE_DIR", "triton")):
        if overwrite or not os.environ.get(variable):
            folder = base / sub
            folder.mkdir(parents=True, exist_ok=True)
            os.environ[variable] = str(folder)
        result[variable] = os.environ[variable]
    logger.info("torch.compile caches: %s", result)
    return result


def apply_gpu_options(
    pipe: Any,
    *,
    fuse_qkv: bool = False,
    channels_last: bool = False,
    compile: bool = False,
    fp8: bool = False,
    before_compile: Callable[[Any], None] | None = None,
) -> dict[str, Any]:
    """Optional speed-ups for a pipeline already on the GPU; each is off by default.

    Args:
        pipe: The FluxPipeline.
        fuse_qkv: Fuse the attention q/k/v projections (``pipe.fuse_qkv_projections()``).
        channels_last: Put the VAE in ``channels_last`` memory format.
        fp8: Quantise the transformer to fp8 with torchao (:func:`quantize_fp8`; after the
            q/k/v fusion, before compiling). Check :func:`check_fp8_support` first.
        compile: Compile the transformer: regional compilation
            (``compile_repeated_blocks(fullgraph=True)``) where diffusers has it, else
            ``torch.compile``. The first generations afterwards are slow (compilation).
        before_compile: Called with the pipeline just before compiling (the engine adds its
            LoRA hotswap slots there: modules added after compiling would recompile).

    Returns:
        Which options were applied, for :meth:`Engine.info`'s ``extra``.
    """
    applied: dict[str, Any] = {}
    if fuse_qkv:
        pipe.fuse_qkv_projections()
        applied["fuse_qkv"] = True
    if channels_last:
        pipe.vae.to(memory_format=torch.channels_last)
        applied["channels_last"] = True
    if fp8:
        applied["fp8"] = quantize_fp8(pipe)
    if compile:
        if before_compile is not None:
            before_compile(pipe)
        transformer = pipe.transformer
        if hasattr(transformer, "compile_repeated_blocks"):
            transformer.compile_repeated_blocks(fullgraph=True)
            applied["compile"] = "compile_repeated_blocks(fullgraph=True)"
        else:
            pipe.transformer = torch.compile(transformer)
            applied["compile"] = "torch.compile(transformer)"
    if applied:
        logger.info("GPU options applied: %s", applied)
    return applied
