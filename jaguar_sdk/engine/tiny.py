"""A tiny, randomly initialised FluxPipeline, built fully offline (no Hub files at all).

It has the structure of shuttle-jaguar / FLUX.1-schnell (16 latent channels, a x8 VAE,
``guidance_embeds=False``, the schnell flow-matching scheduler) with about 160k parameters, so
tests, demos and the CLI run on any CPU in milliseconds. The images look like coloured noise:
the weights are random. Both tokenizers are built in memory (transformers 5 accepts the vocab
directly). See ``shared/notes/tiny-flux.md`` for the recipe and its pitfalls.

:func:`build_random_flux_pipeline` is the one builder: it takes a :class:`RandomFluxSizes`
(:data:`TINY` here; the benchmarks pass larger ones), so every random Flux build shares the
same components, tokenizers, scheduler and assembly.
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._extras import import_extra
from ._quiet import flux_pipeline_class, quiet_progress_bars

__all__ = [
    "TINY",
    "TINY_MODEL_NAME",
    "TINY_MODEL_VERSION",
    "RandomFluxSizes",
    "build_random_flux_pipeline",
    "build_tiny_lora",
    "build_tiny_model",
    "build_tiny_pipeline",
]

#: The model name that :func:`jaguar_sdk.engine.resolve_model` builds on demand.
TINY_MODEL_NAME = "tiny"
#: Bumped whenever the recipe changes, so cached builds of an older recipe are not reused.
TINY_MODEL_VERSION = 1

_CLIP_MERGES: tuple[tuple[str, str], ...] = (
    ("t", "h"),
    ("th", "e</w>"),
    ("a", "n"),
    ("an", "d</w>"),
    ("i", "n"),
    ("in", "g</w>"),
    ("o", "n</w>"),
    ("e", "r</w>"),
    ("c", "a"),
    ("ca", "t</w>"),
    ("j", "a"),
    ("ja", "g"),
    ("jag", "u"),
    ("jagu", "a"),
    ("jagua", "r</w>"),
)
_T5_WORDS = ("the", "a", "cat", "jaguar", "and", "in", "of", "white", "sign", "reading")


def _module(name: str) -> Any:
    """Import a library untyped (diffusers/transformers constructors are not annotated)."""
    return import_extra(name, what="Building the tiny model")


def _bytes_to_unicode() -> list[str]:
    """The 256 printable stand-ins GPT-2/CLIP byte-level BPE uses for the bytes 0..255."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return [chr(code) for code in codes]


def _clip_tokenizer() -> Any:
    """A CLIP BPE tokenizer with the openai vocab layout (529 entries), built in memory."""
    CLIPTokenizer = _module("transformers").CLIPTokenizer

    chars = _bytes_to_unicode()
    vocab: dict[str, int] = {}
    for char in chars:
        vocab[char] = len(vocab)
    for char in chars:
        vocab[char + "</w>"] = len(vocab)
    for left, right in _CLIP_MERGES:
        vocab.setdefault(left + right, len(vocab))
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    # model_max_length is mandatory: without it FluxPipeline overflows on 1e30.
    return CLIPTokenizer(vocab=vocab, merges=list(_CLIP_MERGES), model_max_length=77)


def _t5_tokenizer() -> Any:
    """A T5 Unigram tokenizer with T5's id layout (<pad>=0, </s>=1, <unk>=2), built in memory."""
    T5TokenizerFast = _module("transformers").T5TokenizerFast

    pieces: list[tuple[str, float]] = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0)]
    pieces.append(("▁", -1.0))
    pieces.extend(("▁" + word, -2.0) for word in _T5_WORDS)
    for char in string.ascii_lowercase + string.digits + string.punctuation:
        pieces.append((char, -5.0))
        pieces.append(("▁" + char, -5.5))
    return T5TokenizerFast(vocab=pieces, extra_ids=100, model_max_length=512)


@dataclass(frozen=True)
class RandomFluxSizes:
    """The dimensions of a random-weight FluxPipeline built by :func:`build_random_flux_pipeline`.

    Everything else (component classes, tokenizers, 16 latent channels, the x8 VAE with four
    blocks, the schnell scheduler, ``guidance_embeds=False``) is fixed. The transformer's
    ``joint_attention_dim`` is ``t5_d_model`` and its ``pooled_projection_dim`` is
    ``clip_hidden_size``, as Flux requires.

    Attributes:
        num_layers: Transformer double-stream (joint) blocks.
        num_single_layers: Transformer single-stream blocks.
        num_attention_heads: Transformer attention heads.
        attention_head_dim: Transformer width per head.
        axes_dims_rope: Rotary embedding dims per axis; must sum to ``attention_head_dim``.
        vae_block_out_channels: Channels of the four VAE blocks.
        vae_norm_num_groups: Group-norm groups of the VAE; must divide every block's channels.
        vae_layers_per_block: ResNet layers per VAE block (FLUX.1's VAE: 2).
        clip_hidden_size: CLIP text encoder width (also its projection dim).
        clip_intermediate_size: CLIP MLP width.
        clip_num_hidden_layers: CLIP layers.
        clip_num_attention_heads: CLIP attention heads.
        clip_vocab_size: CLIP token embeddings; ``None`` for the in-memory tokenizer's length
            (CLIP-L: 49408). Must be at least the tokenizer's length.
        t5_d_model: T5 encoder width.
        t5_d_kv: T5 width per attention head.
        t5_d_ff: T5 feed-forward width.
        t5_num_layers: T5 layers.
        t5_num_heads: T5 attention heads.
        t5_vocab_size: T5 token embeddings; ``None`` for the in-memory tokenizer's length
            (T5-XXL: 32128). Must be at least the tokenizer's length.
        t5_relative_attention_num_buckets: T5 relative-position buckets (T5-XXL: 32).

    Example:
        >>> from jaguar_sdk.engine.tiny import TINY, RandomFluxSizes
        >>> TINY.joint_attention_dim
        32
        >>> RandomFluxSizes(attention_head_dim=8, axes_dims_rope=(4, 4, 8))
        Traceback (most recent call last):
        ...
        ValueError: axes_dims_rope must sum to attention_head_dim (8), got (4, 4, 8)
    """

    num_layers: int = 1
    num_single_layers: int = 1
    num_attention_heads: int = 2
    attention_head_dim: int = 16
    axes_dims_rope: tuple[int, int, int] = (4, 4, 8)
    vae_block_out_channels: tuple[int, int, int, int] = (8, 8, 8, 8)
    vae_norm_num_groups: int = 4
    vae_layers_per_block: int = 1
    clip_hidden_size: int = 32
    clip_intermediate_size: int = 37
    clip_num_hidden_layers: int = 2
    clip_num_attention_heads: int = 4
    clip_vocab_size: int | None = None
    t5_d_model: int = 32
    t5_d_kv: int = 8
    t5_d_ff: int = 37
    t5_num_layers: int = 2
    t5_num_heads: int = 4
    t5_vocab_size: int | None = None
    t5_relative_attention_num_buckets: int = 8

    def __post_init__(self) -> None:
        """Reject combinations the Flux components cannot be built with."""
        if sum(self.axes_dims_rope) != self.attention_head_dim:
            raise ValueError(
                f"axes_dims_rope must sum to attention_head_dim ({self.attention_head_dim}), "
                f"got {self.axes_dims_rope}"
            )
        if any(ch % self.vae_norm_num_groups for ch in self.vae_block_out_channels):
            raise ValueError(
                f"vae_norm_num_groups ({self.vae_norm_num_groups}) must divide every "
                f"vae_block_out_channels entry, got {self.vae_block_out_channels}"
            )

    @property
    def joint_attention_dim(self) -> int:
        """The transformer's text-token width: the T5 encoder's ``d_model``."""
        return self.t5_d_model

    @property
    def pooled_projection_dim(self) -> int:
        """The transformer's pooled-text width: the CLIP encoder's hidden size."""
        return self.clip_hidden_size


def _vocab_size(field: str, requested: int | None, tokenizer: Any) -> int:
    """The embedding rows for a text encoder: ``requested``, or the tokenizer's length."""
    length = len(tokenizer)
    if requested is None:
        return length
    if requested < length:
        raise ValueError(
            f"{field} must be at least the tokenizer's length ({length}), got {requested}"
        )
    return requested


#: The sizes of the tiny model (about 160k parameters), the one :func:`build_tiny_model` saves.
TINY = RandomFluxSizes()


def _flux_transformer(diffusers: Any, sizes: RandomFluxSizes) -> Any:
    return diffusers.FluxTransformer2DModel(
        patch_size=1,
        in_channels=64,  # 4 * latent_channels: Flux packs 2x2 latent patches
        num_layers=sizes.num_layers,
        num_single_layers=sizes.num_single_layers,
        attention_head_dim=sizes.attention_head_dim,
        num_attention_heads=sizes.num_attention_heads,
        joint_attention_dim=sizes.joint_attention_dim,  # == T5 d_model
        pooled_projection_dim=sizes.pooled_projection_dim,  # == CLIP hidden_size
        guidance_embeds=False,
        axes_dims_rope=sizes.axes_dims_rope,  # sums to attention_head_dim
    )


def build_random_flux_pipeline(sizes: RandomFluxSizes, *, seed: int = 0) -> Any:
    """Build a random-weight FluxPipeline of the given sizes in memory (float32, CPU, eval mode).

    Needs no network: both tokenizers are built in memory. The build is deterministic: the same
    sizes, seed and library versions give bit-identical weights.

    Args:
        sizes: The dimensions of the components; :data:`TINY` for the tiny model.
        seed: Seed for the random weights; the same seed gives the same weights.

    Returns:
        A ``diffusers.FluxPipeline``.

    Example:
        >>> from jaguar_sdk.engine.tiny import TINY, build_random_flux_pipeline
        >>> pipe = build_random_flux_pipeline(TINY, seed=0)  # doctest: +SKIP
        >>> pipe.transformer.config.num_layers  # doctest: +SKIP
        1
    """
    torch, diffusers = _module("torch"), _module("diffusers")
    transformers = _module("transformers")
    tokenizer = _clip_tokenizer()
    tokenizer_2 = _t5_tokenizer()
    torch.manual_seed(seed)
    transformer = _flux_transformer(diffusers, sizes)
    vae = diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=sizes.vae_block_out_channels,  # four blocks: vae_scale_factor 8
        layers_per_block=sizes.vae_layers_per_block,
        latent_channels=16,
        norm_num_groups=sizes.vae_norm_num_groups,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.1159,
        scaling_factor=0.3611,
    )
    text_encoder = transformers.CLIPTextModel(
        transformers.CLIPTextConfig(
            vocab_size=_vocab_size("clip_vocab_size", sizes.clip_vocab_size, tokenizer),
            hidden_size=sizes.clip_hidden_size,
            intermediate_size=sizes.clip_intermediate_size,
            num_hidden_layers=sizes.clip_num_hidden_layers,
            num_attention_heads=sizes.clip_num_attention_heads,
            max_position_embeddings=77,
            projection_dim=sizes.clip_hidden_size,
            hidden_act="quick_gelu",
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    text_encoder_2 = transformers.T5EncoderModel(
        transformers.T5Config(
            vocab_size=_vocab_size("t5_vocab_size", sizes.t5_vocab_size, tokenizer_2),
            d_model=sizes.t5_d_model,
            d_kv=sizes.t5_d_kv,
            d_ff=sizes.t5_d_ff,
            num_layers=sizes.t5_num_layers,
            num_heads=sizes.t5_num_heads,
            relative_attention_num_buckets=sizes.t5_relative_attention_num_buckets,
            feed_forward_proj="gated-gelu",
            is_encoder_decoder=False,
            use_cache=False,
            dropout_rate=0.0,
        )
    )
    scheduler = diffusers.FlowMatchEulerDiscreteScheduler(  # the FLUX.1-schnell scheduler config
        shift=1.0,
        use_dynamic_shifting=False,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    for module in (transformer, vae, text_encoder, text_encoder_2):
        module.eval()
    return flux_pipeline_class()(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )


def build_tiny_pipeline(*, seed: int = 0) -> Any:
    """Build the tiny FluxPipeline in memory (float32, CPU, eval mode).

    Same as ``build_random_flux_pipeline(TINY, seed=seed)``.

    Args:
        seed: Seed for the random weights; the same seed gives the same weights.

    Returns:
        A ``diffusers.FluxPipeline``.

    Example:
        >>> from jaguar_sdk.engine.tiny import build_tiny_pipeline
        >>> build_tiny_pipeline(seed=0).vae_scale_factor  # doctest: +SKIP
        8
    """
    return build_random_flux_pipeline(TINY, seed=seed)


def build_tiny_model(directory: str | os.PathLike[str], *, seed: int = 0) -> Path:
    """Build the tiny random FluxPipeline and save it in diffusers layout.

    The build is deterministic: the same seed (and library versions) gives bit-identical files.
    It needs no network. The folder loads with the stock ``FluxPipeline.from_pretrained``.

    Args:
        directory: Where to save; created if missing. Existing files of the same names are
            overwritten. For a crash-safe cached build use :func:`resolve_model` instead.
        seed: Seed for the random weights.

    Returns:
        The folder, as an absolute path.

    Raises:
        OSError: If the folder cannot be written.

    Example:
        >>> from jaguar_sdk.engine import build_tiny_model
        >>> build_tiny_model("/tmp/tiny-flux")  # doctest: +SKIP
        PosixPath('/tmp/tiny-flux')
    """
    target = Path(directory).expanduser().absolute()
    target.mkdir(parents=True, exist_ok=True)
    pipe = build_tiny_pipeline(seed=seed)
    with quiet_progress_bars():
        pipe.save_pretrained(str(target), safe_serialization=True)
    return target


#: The layers the tiny LoRA adapts (the attention projections, as most Flux LoRAs do).
TINY_LORA_TARGETS: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")


def build_tiny_lora(
    directory: str | os.PathLike[str],
    *,
    seed: int = 1,
    rank: int = 4,
    sizes: RandomFluxSizes = TINY,
    weight_name: str = "tiny-lora.safetensors",
) -> Path:
    """Build a random LoRA adapter for the tiny model with peft, fully offline, and save it.

    The adapter targets the attention projections of a random transformer of ``sizes`` with
    random (non-zero) ``lora_A`` and ``lora_B``, so it visibly changes the tiny model's images.
    It is saved as diffusers saves Flux LoRAs (``FluxPipeline.save_lora_weights``: keys
    ``transformer.<layer>.lora_A.weight``...). Built with other ``sizes`` it does not fit the
    tiny model (the engine refuses it): what tests of a mismatched adapter need.

    Args:
        directory: Where to write the file (created).
        seed: Seed of the random weights; the same seed gives the same file.
        rank: The LoRA rank.
        sizes: The transformer it is made for (default: the tiny model's).
        weight_name: The file name.

    Returns:
        The ``.safetensors`` file.

    Raises:
        ConfigurationError: peft or the engine extra is not installed.

    Example:
        >>> from jaguar_sdk.engine import build_tiny_lora
        >>> build_tiny_lora("/tmp/loras").name  # doctest: +SKIP
        'tiny-lora.safetensors'
    """
    torch, diffusers = _module("torch"), _module("diffusers")
    peft = import_extra("peft", "engine", what="Building the tiny LoRA")
    peft_utils = import_extra("peft.utils", "engine", what="Building the tiny LoRA")
    target = Path(directory).expanduser().absolute()
    target.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    transformer = _flux_transformer(diffusers, sizes)
    config = peft.LoraConfig(
        r=rank,
        lora_alpha=rank,
        target_modules=list(TINY_LORA_TARGETS),
        init_lora_weights=False,  # random A and B: the adapter changes the output
    )
    transformer.add_adapter(config)
    layers = peft_utils.get_peft_model_state_dict(transformer)
    flux_pipeline_class().save_lora_weights(
        str(target), transformer_lora_layers=layers, weight_name=weight_name
    )
    return target / weight_name
