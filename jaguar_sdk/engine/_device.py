"""Device and dtype choice: CUDA with bfloat16 where there is a GPU, else CPU with float32."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exceptions import ConfigurationError

if TYPE_CHECKING:
    import torch

__all__ = ["dtype_name", "parse_dtype", "select_device", "select_dtype"]

_DTYPE_ALIASES = {
    "float32": "float32",
    "fp32": "float32",
    "float": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
}


def select_device(device: str | None = None) -> str:
    """The device to run on.

    Args:
        device: An explicit choice (``"cuda"``, ``"cuda:1"``, ``"cpu"``, ``"mps"``...), or
            ``None`` for ``"cuda"`` when a GPU is available, else ``"cpu"``.

    Returns:
        The device string.

    Raises:
        ConfigurationError: If CUDA was asked for but is not available.

    Example:
        >>> select_device("cpu")
        'cpu'
    """
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    device = device.strip().lower()
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigurationError(
            f"device {device!r} was requested but CUDA is not available in this environment "
            f"(torch {torch.__version__}); use device='cpu' or install a CUDA build of torch."
        )
    return device


def select_dtype(device: str, dtype: str | None = None) -> torch.dtype:
    """The weight dtype for a device.

    Args:
        device: The device the pipeline will run on.
        dtype: An explicit choice (``"bfloat16"``/``"bf16"``, ``"float16"``, ``"float32"``), or
            ``None`` for bfloat16 on CUDA and float32 elsewhere.

    Returns:
        The ``torch.dtype``.

    Raises:
        ConfigurationError: If ``dtype`` is not a known name.

    Example:
        >>> select_dtype("cpu")
        torch.float32
    """
    if dtype is None:
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    return parse_dtype(dtype)


def parse_dtype(name: str) -> torch.dtype:
    """Map a dtype name (``"bf16"``, ``"bfloat16"``, ``"float32"``...) to a ``torch.dtype``.

    Raises:
        ConfigurationError: If the name is unknown.
    """
    import torch

    canonical = _DTYPE_ALIASES.get(name.strip().lower().removeprefix("torch."))
    if canonical is None:
        allowed = ", ".join(sorted(set(_DTYPE_ALIASES.values())))
        raise ConfigurationError(f"unknown dtype {name!r}; use one of {allowed}")
    result: torch.dtype = getattr(torch, canonical)
    return result


def dtype_name(dtype: torch.dtype) -> str:
    """``torch.bfloat16`` -> ``"bfloat16"``."""
    return str(dtype).removeprefix("torch.")
