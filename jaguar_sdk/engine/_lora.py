"""LoRA adapters on the loaded pipeline: resolve, check, cache (LRU), apply to one request only.

Where an adapter's file comes from is not the engine's business: an :class:`AdapterSource`
(``jaguar_sdk.weights.AdapterStore`` in practice: download once to the Volume, verify) turns a
:class:`~jaguar_sdk.LoraAdapter` into a local ``.safetensors`` file. Here:

- **Check before loading.** diffusers' ``FluxLoraLoaderMixin.load_lora_weights`` *expands*
  base layers whose shape differs from the adapter's (``_maybe_expand_transformer_param_shape_or_
  error_``, for Flux Control LoRAs), which would change the model for every later request. So
  every adapter weight is first checked against the layer it targets (:func:`check_fits`): a
  layer that does not exist (an adapter for another model) or of another shape is refused with
  an :class:`~jaguar_sdk.InvalidRequestError` naming ``loras``, before anything is loaded.
- **No leak between requests.** An adapter is active only inside :meth:`LoraManager.applied`,
  which disables every adapter when the request ends (``disable_lora``: peft's LoRA layers then
  return their base layer's output unchanged, ``peft/tuners/lora/layer.py`` ``Linear.forward``).
- **Two modes.** Eager (the default): each adapter is loaded into the pipeline under its own
  name (``load_lora_weights``), at most ``max_cached`` of them, least recently used evicted
  (``delete_adapters``). Compiled (:meth:`LoraManager.enable_hotswap`, before
  ``torch.compile``): the transformer gets ``slots`` zero LoRA adapters of rank ``rank`` on
  every linear layer, their scalings made tensors (``peft.utils.hotswap.
  prepare_model_for_compiled_hotswap``); a request's adapters are copied into the slots
  (diffusers ``load_lora_adapter(..., hotswap=True)``) and their scales written into those
  tensors in place, so switching adapters or scales never changes what the compiled graph
  guards on. Only which slots are active does: ``slots + 1`` graph variants, each compiled once.
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch

from .._exceptions import InvalidRequestError
from .._logging import get_logger
from .._request import MAX_LORAS, LoraAdapter
from ._quiet import drop_log_records

__all__ = [
    "DEFAULT_HOTSWAP_RANK",
    "DEFAULT_MAX_CACHED_ADAPTERS",
    "AdapterFile",
    "AdapterSource",
    "LoraManager",
    "check_fits",
]

logger = get_logger("jaguar_sdk.engine")

#: Adapters kept loaded (eager) or prepared in host memory (compiled) per engine.
DEFAULT_MAX_CACHED_ADAPTERS = 8
#: LoRA rank of the hotswap slots (adapters of a higher rank are refused when compiled).
DEFAULT_HOTSWAP_RANK = 64
#: Pipeline components an adapter may target (those ``FluxLoraLoaderMixin`` loads into).
_COMPONENTS = ("transformer", "text_encoder")
_SLOT = "jaguar_slot_{}"
#: What diffusers logs on every adapter load that says nothing here: an adapter without
#: text-encoder weights (``loaders/peft.py`` ``load_lora_adapter`` and ``loaders/lora_base.py``
#: ``_load_lora_into_text_encoder``), and missing keys that
#: ``utils/peft_utils.py`` ``_maybe_warn_for_unhandled_keys`` reports for the
#: ``low_cpu_mem_usage`` load (the weights are loaded: ``tests/engine`` compares them).
_LOAD_NOISE = {
    "diffusers.loaders.peft": ("No LoRA keys associated to",),
    "diffusers.loaders.lora_base": ("No LoRA keys associated to",),
    "diffusers.utils.peft_utils": ("led to missing keys in the model",),
}


@contextlib.contextmanager
def _quiet_load() -> Iterator[None]:
    import warnings

    with drop_log_records(_LOAD_NOISE), warnings.catch_warnings():
        # peft tuners_utils.py: "Already found a `peft_config` attribute in the model": the
        # engine keeps several named adapters on purpose.
        warnings.filterwarnings("ignore", message="Already found a `peft_config`")
        yield


class AdapterFile(Protocol):
    """A resolved adapter: a local ``.safetensors`` file and its identity."""

    @property
    def path(self) -> Path: ...

    @property
    def key(self) -> str: ...

    def describe(self) -> dict[str, Any]: ...


class AdapterSource(Protocol):
    """Turns a requested adapter into a local file (downloading and verifying it if needed)."""

    def resolve(self, adapter: LoraAdapter) -> AdapterFile: ...


def _misfit(adapter: AdapterFile | LoraAdapter | str, why: str) -> InvalidRequestError:
    label = adapter if isinstance(adapter, str) else _label(adapter)
    return InvalidRequestError(
        f"loras: {label} does not fit this model: {why}. Use a LoRA trained for FLUX.1 "
        "(Shuttle Jaguar shares its architecture).",
        field="loras",
        code="adapter_mismatch",
    )


def _label(adapter: AdapterFile | LoraAdapter) -> str:
    if isinstance(adapter, LoraAdapter):
        return adapter.label()
    return str(adapter.describe().get("source") or adapter.key)


def _split_key(key: str) -> tuple[str, str, str] | None:
    """``"transformer.a.b.lora_A.weight"`` -> ``("transformer", "a.b", "lora_A.weight")``."""
    component, _, rest = key.partition(".")
    for marker in (".lora_A.", ".lora_B."):
        if marker in rest:
            module, _, tail = rest.partition(marker)
            return component, module, marker.strip(".") + "." + tail
    return None


def check_fits(pipe: Any, state_dict: dict[str, Any], label: str) -> dict[str, int]:
    """Check every weight of a (diffusers-format) LoRA state dict against the pipeline.

    Args:
        pipe: The Flux pipeline.
        state_dict: From ``FluxPipeline.lora_state_dict`` (keys ``"<component>.<layer>.lora_A.
            weight"``...).
        label: The adapter, for messages.

    Returns:
        ``{component: highest rank}`` of the components the adapter targets.

    Raises:
        InvalidRequestError: A weight that is not a LoRA weight, targets a layer the model does
            not have or that is not linear, or has another shape than that layer.
    """
    problems: list[str] = []
    ranks: dict[str, int] = {}
    for key, tensor in state_dict.items():
        parts = _split_key(key)
        if parts is None:
            problems.append(f"{key!r} is not a LoRA weight")
            continue
        component, module_name, tail = parts
        model = getattr(pipe, component, None) if component in _COMPONENTS else None
        if model is None:
            problems.append(f"{key!r} targets {component!r}, which takes no LoRA here")
            continue
        try:
            module = model.get_submodule(module_name)
        except AttributeError:
            problems.append(f"the model has no layer {component}.{module_name}")
            continue
        base = getattr(module, "base_layer", module)
        if not isinstance(base, torch.nn.Linear):
            problems.append(f"{component}.{module_name} is not a linear layer")
            continue
        shape = tuple(getattr(tensor, "shape", ()))
        if tail == "lora_A.weight":
            ok, want = len(shape) == 2 and shape[1] == base.in_features, f"(r, {base.in_features})"
            if len(shape) == 2:
                ranks[component] = max(ranks.get(component, 0), int(shape[0]))
        elif tail == "lora_B.weight":
            ok = len(shape) == 2 and shape[0] == base.out_features
            want = f"({base.out_features}, r)"
        elif tail == "lora_B.bias":
            ok, want = shape == (base.out_features,), f"({base.out_features},)"
        else:
            ok, want = False, "a lora_A/lora_B weight"
        if not ok:
            problems.append(f"{component}.{module_name}.{tail} has shape {shape}, expected {want}")
    if not ranks and not problems:
        problems.append("it holds no LoRA weights")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise _misfit(label, "; ".join(problems[:3]) + more)
    return ranks


@dataclass
class _Entry:
    """One cached adapter."""

    file: AdapterFile
    name: str
    ranks: dict[str, int]
    loaded_s: float
    state: tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None] | None = None
    uses: int = 0


@dataclass
class _Slots:
    """The hotswap slots of a compiled transformer."""

    count: int
    rank: int
    holds: list[str | None] = field(default_factory=list)  # adapter key per slot
    base_scaling: list[dict[Any, float]] = field(default_factory=list)  # per slot, per layer
    swaps: int = 0
    swap_s: float = 0.0


class LoraManager:
    """The adapters of one engine: resolve, check, cache, apply to one request.

    Args:
        source: Where adapter files come from; ``None`` refuses every request with ``loras``.
        max_cached: Adapters kept (LRU); at least :data:`~jaguar_sdk._request.MAX_LORAS`.

    Example:
        >>> manager = LoraManager(store)                          # doctest: +SKIP
        >>> files = manager.resolve(request.loras)                # may download
        >>> with manager.applied(pipe, files):                    # under the engine's lock
        ...     latents = denoise(...)
    """

    def __init__(
        self, source: AdapterSource | None, *, max_cached: int = DEFAULT_MAX_CACHED_ADAPTERS
    ) -> None:
        if max_cached < MAX_LORAS:
            raise ValueError(f"max_cached must be at least {MAX_LORAS} (one request's adapters)")
        self.source = source
        self.max_cached = max_cached
        self.unsupported: str | None = None  # why this engine takes no adapter, where it cannot
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._slots: _Slots | None = None
        self._counter = 0

    # --- before the lock ---------------------------------------------------------------------
    def resolve(self, adapters: Sequence[LoraAdapter]) -> list[tuple[AdapterFile, float]]:
        """The local file and scale of each requested adapter (may download; no GPU work).

        Raises:
            InvalidRequestError: This engine takes no adapters, or the source refused one.
            JaguarError: Whatever the source raises for a download that failed.
        """
        if not adapters:
            return []
        if self.unsupported is not None:
            raise InvalidRequestError(f"loras: {self.unsupported}", field="loras")
        if self.source is None:
            raise InvalidRequestError(
                "loras: this server was started without an adapter store, so it applies no "
                "LoRA adapters (the engine needs adapters=...).",
                field="loras",
            )
        return [(self.source.resolve(adapter), adapter.scale) for adapter in adapters]

    # --- under the engine's lock -------------------------------------------------------------
    @contextlib.contextmanager
    def applied(self, pipe: Any, resolved: Sequence[tuple[AdapterFile, float]]) -> Iterator[None]:
        """Apply the adapters for the block's duration; afterwards none is active.

        Raises:
            InvalidRequestError: An adapter does not fit the model (nothing of it is loaded,
                and the engine serves on unchanged).
        """
        if not resolved:
            yield
            return
        merged: dict[str, tuple[AdapterFile, float]] = {}
        for file, scale in resolved:  # the same bytes under two names: one adapter, scales add
            known = merged.get(file.key)
            merged[file.key] = (file, scale + (known[1] if known else 0.0))
        entries = [self._entry(pipe, file) for file, _ in merged.values()]
        scales = [scale for _, scale in merged.values()]
        try:
            if self._slots is None:
                pipe.set_adapters([e.name for e in entries], adapter_weights=scales)
                pipe.enable_lora()
            else:
                self._fill_slots(pipe.transformer, entries, scales)
            for entry in entries:
                entry.uses += 1
            yield
        finally:
            pipe.disable_lora() if self._slots is None else pipe.transformer.disable_lora()

    def _entry(self, pipe: Any, file: AdapterFile) -> _Entry:
        entry = self._entries.get(file.key)
        if entry is not None:
            self._entries.move_to_end(file.key)
            return entry
        started = time.perf_counter()
        state = self._read(pipe, file)
        ranks = check_fits(pipe, state[0], _label(file))
        self._counter += 1
        entry = _Entry(file=file, name=f"jaguar_lora_{self._counter}", ranks=ranks, loaded_s=0.0)
        if self._slots is None:
            self._load_named(pipe, entry)
        else:
            self._check_slot_fit(entry)
            entry.state = state  # host memory: copied into a slot when a request uses it
        entry.loaded_s = time.perf_counter() - started
        self._entries[file.key] = entry
        self._evict(pipe)
        logger.info("adapter %s cached in %.3fs", _label(file), entry.loaded_s)
        return entry

    def _read(
        self, pipe: Any, file: AdapterFile
    ) -> tuple[dict[str, Any], dict[str, Any] | None, dict[str, Any] | None]:
        # use_safetensors=True means allow_pickle=False in FluxLoraLoaderMixin.lora_state_dict:
        # only a .safetensors file is read, never a pickle. It converts kohya/xlabs/BFL layouts.
        try:
            state, alphas, metadata = pipe.lora_state_dict(
                str(file.path.parent),
                weight_name=file.path.name,
                use_safetensors=True,
                local_files_only=True,
                return_alphas=True,
                return_lora_metadata=True,
            )
        except Exception as exc:
            raise _misfit(file, f"it does not read as a Flux LoRA ({type(exc).__name__})") from exc
        return dict(state), alphas or None, metadata or None

    def _load_named(self, pipe: Any, entry: _Entry) -> None:
        try:
            with _quiet_load():
                pipe.load_lora_weights(
                    str(entry.file.path.parent),
                    weight_name=entry.file.path.name,
                    adapter_name=entry.name,
                    use_safetensors=True,
                    local_files_only=True,
                )
        except Exception as exc:
            self._forget(pipe, entry.name)
            raise _misfit(entry.file, f"loading it failed ({type(exc).__name__}: {exc})") from exc
        finally:
            pipe.disable_lora()  # loading activates it; only applied() may

    def _forget(self, pipe: Any, name: str) -> None:
        with contextlib.suppress(Exception):
            present = {a for names in pipe.get_list_adapters().values() for a in names}
            if name in present:
                pipe.delete_adapters([name])

    def _evict(self, pipe: Any) -> None:
        while len(self._entries) > self.max_cached:
            _, entry = self._entries.popitem(last=False)
            if self._slots is None:
                self._forget(pipe, entry.name)
            logger.info("adapter %s evicted (least recently used)", _label(entry.file))

    # --- hotswap (compiled transformer) ------------------------------------------------------
    def enable_hotswap(
        self, pipe: Any, *, slots: int = MAX_LORAS, rank: int = DEFAULT_HOTSWAP_RANK
    ) -> None:
        """Give the transformer ``slots`` zero adapters of ``rank`` on every linear layer.

        Call it before compiling the transformer and before any adapter is loaded. The slots
        are inactive (``disable_lora``) outside :meth:`applied`, so they change no output.

        Raises:
            RuntimeError: Adapters are loaded already.
        """
        from peft import LoraConfig
        from peft.utils.hotswap import prepare_model_for_compiled_hotswap

        if self._entries or self._slots is not None:
            raise RuntimeError("enable_hotswap must run before any adapter is loaded")
        transformer = pipe.transformer
        targets = sorted(
            name for name, m in transformer.named_modules() if isinstance(m, torch.nn.Linear)
        )
        with _quiet_load():
            for index in range(slots):
                config = LoraConfig(r=rank, lora_alpha=rank, target_modules=targets)
                transformer.add_adapter(config, adapter_name=_SLOT.format(index))
        # Scalings become tensors, so writing a new scale later changes no guarded constant.
        prepare_model_for_compiled_hotswap(transformer, target_rank=rank)
        transformer.disable_lora()
        self._slots = _Slots(
            count=slots,
            rank=rank,
            holds=[None] * slots,
            base_scaling=[{} for _ in range(slots)],
        )

    def _check_slot_fit(self, entry: _Entry) -> None:
        assert self._slots is not None
        if set(entry.ranks) - {"transformer"}:
            raise _misfit(
                entry.file,
                "it has text-encoder weights, which a compiled server cannot swap in (hotswap "
                "covers the transformer only)",
            )
        if entry.ranks.get("transformer", 0) > self._slots.rank:
            raise _misfit(
                entry.file,
                f"its rank {entry.ranks['transformer']} is above this server's hotswap rank "
                f"{self._slots.rank}",
            )

    def _fill_slots(self, transformer: Any, entries: Sequence[_Entry], scales: list[float]) -> None:
        from peft.tuners.lora import LoraLayer

        slots = self._slots
        assert slots is not None
        layers = [m for m in transformer.modules() if isinstance(m, LoraLayer)]
        active = [_SLOT.format(i) for i in range(len(entries))]
        for index, (entry, name) in enumerate(zip(entries, active, strict=True)):
            if slots.holds[index] != entry.file.key:
                self._swap_in(transformer, entry, index, name, layers)
            for layer, base in slots.base_scaling[index].items():
                layer.scaling[name].fill_(base * scales[index])
        for layer in layers:
            # the slots in use, always a prefix: slots + 1 variants; inference_mode keeps
            # requires_grad False (peft tuners_utils.py BaseTunerLayer.set_adapter), one guard less
            layer.set_adapter(active, inference_mode=True)
        transformer.enable_lora()

    def _swap_in(
        self, transformer: Any, entry: _Entry, index: int, name: str, layers: list[Any]
    ) -> None:
        slots = self._slots
        assert slots is not None and entry.state is not None
        state, alphas, metadata = entry.state
        started = time.perf_counter()
        slots.holds[index] = None  # half-swapped until the copy below finishes
        try:
            # diffusers peft.py load_lora_adapter(hotswap=True): peft's
            # hotswap_adapter_from_state_dict copies the weights into the slot's tensors (zeroing
            # the layers this adapter leaves out) and fills the scaling tensors in place.
            with _quiet_load():
                transformer.load_lora_adapter(
                    dict(state),
                    prefix="transformer",
                    adapter_name=name,
                    hotswap=True,
                    network_alphas=alphas,
                    metadata=None if alphas else metadata,
                )
        except Exception as exc:
            why = f"it cannot be swapped in ({type(exc).__name__}: {exc})"
            raise _misfit(entry.file, why) from exc
        slots.base_scaling[index] = {
            layer: float(layer.scaling[name]) for layer in layers if name in layer.scaling
        }
        slots.holds[index] = entry.file.key
        slots.swaps += 1
        slots.swap_s += time.perf_counter() - started

    # --- reporting ---------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        """For ``info().extra["lora"]``: the mode, the bound and the cached adapters."""
        out: dict[str, Any] = {
            "mode": "hotswap" if self._slots is not None else "eager",
            "max_cached": self.max_cached,
            "store": self.source is not None and self.unsupported is None,
            "cached": [
                {**entry.file.describe(), "uses": entry.uses, "load_s": round(entry.loaded_s, 4)}
                for entry in reversed(self._entries.values())  # most recently used first
            ],
        }
        if self.unsupported is not None:
            out["unsupported"] = self.unsupported
        if self._slots is not None:
            out.update(
                {
                    "slots": self._slots.count,
                    "slot_rank": self._slots.rank,
                    "swaps": self._slots.swaps,
                    "swap_s": round(self._slots.swap_s, 4),
                }
            )
        return out
