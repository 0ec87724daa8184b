"""Load before a CPU memory snapshot without asking for CUDA; insist on CUDA after the restore.

Why: during ``@modal.enter(snap=True)`` of a CPU memory snapshot no GPU is visible, and the
CUDA device count torch reads at its first query is cached for the life of the process
(``c10::cuda::device_count()`` keeps a function-local static; the Python entry point is
``torch.cuda.is_available()`` -> ``torch._C._cuda_getDeviceCount()``, torch/cuda/__init__.py
``is_available``). A query in that phase is restored with the snapshot, so the restored container
sees no GPU, picks "cpu", and serves a 12B model on CPU until every request times out.

Who asks (checked in the installed sources; ``tests/deploy/test_snapshot_no_cuda.py`` spies on
every entry point while the real hook runs):

- diffusers 0.42.1 at import: ``diffusers/utils/torch_utils.py`` runs ``torch_device =
  get_device()`` at module level, and ``pipelines/pipeline_utils.py`` builds
  ``SUPPORTED_DEVICE_MAP = ["balanced"] + [get_device(), "cpu"]``; ``get_device()`` is
  ``TorchDeviceBackend._detect_device_type()`` (an ``lru_cache``) -> ``torch.accelerator
  .is_available()`` -> ``torch.cuda.is_available()`` on a CUDA build.
- transformers 5.x at import: ``integrations/flex_attention.py`` -> ``is_torch_flex_attn_available``
  -> ``get_device_type`` -> ``torch.accelerator.current_accelerator()``, which answers from how
  torch was built ("available at compilation time ... does NOT poison fork",
  torch/accelerator/__init__.py), so it is left alone. Its cached ``is_torch_cuda_available``,
  ``is_torch_bf16_gpu_available`` and ``is_torch_tf32_available`` (utils/import_utils.py) would
  ask if called.
- accelerate 1.15 asks nothing at import; its ``is_cuda_available`` (utils/imports.py) calls
  ``torch.cuda.is_available()`` when used.
- this package: ``select_device(None)`` and ``select_dtype`` (``_device.py``), and
  ``Engine.close()`` (now ``torch.cuda.is_initialized()``, which asks nothing).

``torch.accelerator.*`` beyond ``is_available``/``device_count`` go straight to C++
(``torch._C._accelerator_*``) and can reach the device count without passing through
``torch.cuda.is_available``; so the guard covers those too, at the ``torch._C`` level.

The mechanism, :func:`no_cuda_query`: while it is active, every Python entry point that can reach
the device count answers "no GPU" (``False``/``0``, what the query would have said in that phase)
without calling into CUDA, or raises :class:`CudaQueryError` for calls that need a device; each
query is recorded with its caller. On exit the originals are restored and the library caches
that may hold the "no GPU" answer are cleared, so code after the restore asks again.
``torch.cuda._is_compiled()`` is ``hasattr(torch._C, "_cuda_getDeviceCount")``: the guard only
replaces attributes that exist, never adds one.

Example:
    >>> with no_cuda_query() as guard:                       # doctest: +SKIP
    ...     engine = Engine.load_to_cpu(path, dtype="bfloat16", mmap=False)
    >>> guard.queries                                        # who asked, answered without CUDA
"""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable
from types import ModuleType, TracebackType
from typing import Any

from .._exceptions import ConfigurationError
from .._logging import get_logger

__all__ = ["CudaQueryError", "CudaQueryGuard", "no_cuda_query", "require_cuda"]

logger = get_logger("jaguar_sdk.engine")

#: Answered without CUDA: (module, attribute, answer).
_ANSWERED: tuple[tuple[str, str, Any], ...] = (
    ("torch.cuda", "is_available", False),
    ("torch.cuda", "device_count", 0),
    ("torch.accelerator", "is_available", False),
    ("torch.accelerator", "device_count", 0),
    ("torch._C", "_cuda_getDeviceCount", 0),  # CUDA builds only; never added to a CPU build
    # torch/cuda/random.py binds these by name (`from . import _lazy_init, ..., device_count`).
    ("torch.cuda.random", "device_count", 0),
)
#: Refused: they need a device (every other torch.cuda call goes through ``_lazy_init``).
_REFUSED: tuple[tuple[str, str], ...] = (
    ("torch.cuda", "init"),
    ("torch.cuda", "_lazy_init"),
    ("torch.cuda.random", "_lazy_init"),
    ("torch.accelerator", "current_device_index"),
    ("torch.accelerator", "set_device_index"),
    ("torch.accelerator", "synchronize"),
    ("torch.accelerator", "get_device_capability"),
    ("torch.accelerator", "current_stream"),
    ("torch.accelerator", "set_stream"),
    ("torch._C", "_cuda_init"),
)
#: ``torch._C._accelerator_*`` that answer from how torch was built, not from the device.
_COMPILE_TIME = frozenset({"_accelerator_getAccelerator"})
#: ``lru_cache``d functions that may hold a "no GPU" answer given while the guard was active.
_CACHES: tuple[tuple[str, str], ...] = (
    ("diffusers.utils.torch_utils", "TorchDeviceBackend._detect_device_type"),
    ("transformers.utils.import_utils", "is_torch_cuda_available"),
    ("transformers.utils.import_utils", "is_torch_bf16_gpu_available"),
    ("transformers.utils.import_utils", "is_torch_tf32_available"),
)

#: One guard patches torch at a time (another thread's guard waits; nesting in one thread works).
_active_lock = threading.RLock()


class CudaQueryError(RuntimeError):
    """A call that needs a CUDA device ran while :func:`no_cuda_query` was active."""


class CudaQueryGuard:
    """The context manager :func:`no_cuda_query` returns.

    Attributes:
        queries: ``"torch.cuda.is_available <- diffusers/utils/torch_utils.py:245"`` for every
            query answered (or refused) while active, in order.
    """

    def __init__(self) -> None:
        self.queries: list[str] = []
        self._saved: list[tuple[ModuleType, str, Any]] = []

    def _record(self, name: str) -> None:
        frame = sys._getframe(2)
        where = frame.f_code.co_filename.rsplit("site-packages/", 1)[-1]
        self.queries.append(f"{name} <- {where}:{frame.f_lineno}")

    def _replace(self, module: ModuleType, attr: str, new: Callable[..., Any]) -> None:
        self._saved.append((module, attr, getattr(module, attr)))
        setattr(module, attr, new)

    def _answer(self, name: str, value: Any) -> Callable[..., Any]:
        def answered(*args: Any, **kwargs: Any) -> Any:
            self._record(name)
            return value

        return answered

    def _refuse(self, name: str) -> Callable[..., Any]:
        def refused(*args: Any, **kwargs: Any) -> Any:
            self._record(name)
            raise CudaQueryError(
                f"{name}() needs a CUDA device, but it was called before the memory snapshot, "
                "where no GPU is visible and a CUDA query would stick for the life of the "
                "restored container. Move that call after the restore (@modal.enter(snap=False))."
            )

        return refused

    def __enter__(self) -> CudaQueryGuard:
        _active_lock.acquire()
        try:
            torch_c = importlib.import_module("torch._C")
            for module_name, attr, value in _ANSWERED:
                module = importlib.import_module(module_name)
                if hasattr(module, attr):
                    self._replace(module, attr, self._answer(f"{module_name}.{attr}", value))
            for module_name, attr in _REFUSED:
                module = importlib.import_module(module_name)
                if hasattr(module, attr):
                    self._replace(module, attr, self._refuse(f"{module_name}.{attr}"))
            for attr in dir(torch_c):
                if attr.startswith("_accelerator_") and attr not in _COMPILE_TIME:
                    self._replace(torch_c, attr, self._refuse(f"torch._C.{attr}"))
        except BaseException:
            self._restore()
            _active_lock.release()
            raise
        return self

    def _restore(self) -> None:
        while self._saved:
            module, attr, original = self._saved.pop()
            setattr(module, attr, original)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._restore()
            _clear_device_caches()
        finally:
            _active_lock.release()
        if self.queries:
            logger.info(
                "answered %d CUDA queries without CUDA before the snapshot: %s",
                len(self.queries),
                "; ".join(self.queries),
            )


def no_cuda_query() -> CudaQueryGuard:
    """Keep every CUDA device query out of a block (the ``snap=True`` phase of a CPU snapshot).

    Returns:
        A context manager; its ``queries`` list who asked.

    Raises:
        CudaQueryError: Inside the block, from calls that need a device.

    Example:
        >>> with no_cuda_query() as guard:  # doctest: +SKIP
        ...     import diffusers
        >>> guard.queries[0].startswith("torch.accelerator.is_available")  # doctest: +SKIP
        True
    """
    return CudaQueryGuard()


def _clear_device_caches() -> None:
    for module_name, dotted in _CACHES:
        module = sys.modules.get(module_name)
        if module is None:
            continue
        target: Any = module
        for part in dotted.split("."):
            target = getattr(target, part, None)
        clear = getattr(target, "cache_clear", None)
        if callable(clear):
            clear()


def require_cuda(what: str) -> str:
    """Fail unless CUDA has a device now; called after the restore, before serving.

    Args:
        what: What asked for the GPU, for the message (e.g. ``"JAGUAR_GPU=H100"``).

    Returns:
        The name of device 0 (e.g. ``"NVIDIA H100 80GB HBM3"``).

    Raises:
        ConfigurationError: No CUDA device is visible; serving on CPU would time out every
            request, so the container must fail instead, with this message in its log.
    """
    import torch

    if torch.cuda.is_available():
        return str(torch.cuda.get_device_name(0))
    raise ConfigurationError(
        f"No CUDA device is visible after the restore, but the deployment asked for a GPU "
        f"({what}); refusing to serve on CPU. torch {torch.__version__} (built with CUDA "
        f"{torch.version.cuda or 'none'}). If this container was restored from a memory snapshot, "
        "something queried CUDA before the snapshot (see the 'answered ... CUDA queries' log "
        "line); otherwise check the image's torch build and the GPU type."
    )
