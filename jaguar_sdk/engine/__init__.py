"""The in-process engine: a FluxPipeline behind ``generate(GenerateRequest) -> GenerationResult``.

Needs the ``engine`` extra (torch, diffusers, transformers). Importing this package is cheap:
the names below are loaded on first use, and without the extra that first use raises
:class:`~jaguar_sdk.ConfigurationError` naming it (``pip install 'jaguar-sdk[engine]'``).
Weights on disk (download, verify, versions) are the business of :mod:`jaguar_sdk.weights`,
which never imports torch.

Example:
    >>> from jaguar_sdk import GenerateRequest
    >>> from jaguar_sdk.engine import Engine
    >>> engine = Engine.load("tiny")  # doctest: +SKIP
    >>> engine.generate(GenerateRequest(prompt="a cat", width=64, height=64),
    ...                 request_id="req_1").seed
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:
    from ._device import select_device, select_dtype
    from ._encode import encode_image
    from ._engine import Engine
    from ._loading import configure_compile_cache
    from ._models import cache_dir, resolve_model
    from ._snapshot import no_cuda_query, require_cuda
    from .tiny import TINY_MODEL_NAME, build_tiny_lora, build_tiny_model

__all__ = [
    "TINY_MODEL_NAME",
    "Engine",
    "build_tiny_lora",
    "build_tiny_model",
    "cache_dir",
    "configure_compile_cache",
    "encode_image",
    "no_cuda_query",
    "require_cuda",
    "resolve_model",
    "select_device",
    "select_dtype",
]

_WHERE = {
    "Engine": "._engine",
    "build_tiny_model": ".tiny",
    "build_tiny_lora": ".tiny",
    "TINY_MODEL_NAME": ".tiny",
    "encode_image": "._encode",
    "resolve_model": "._models",
    "cache_dir": "._models",
    "configure_compile_cache": "._loading",
    "select_device": "._device",
    "select_dtype": "._device",
    "no_cuda_query": "._snapshot",
    "require_cuda": "._snapshot",
}


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals())
