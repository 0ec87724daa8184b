"""Build random-weight Flux pipelines of realistic structure offline ("medium", "large").

The transformer matches FLUX.1 / Shuttle Jaguar in structure (double + single blocks, 64 latent
channels in, schnell scheduler, no guidance embedding) at a smaller width, so loading it exercises
the same code paths with ~0.3 GB ("medium") or ~1.1 GB ("large") of fp32 weights. Tokenizers are
built in memory (no Hub access), following /work/shared/notes/tiny-flux.md sections 2 and 4.
Builds are cached under ``benchmarks/.cache/`` and published atomically with one rename.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ._common import CACHE_DIR

CONFIGS: dict[str, dict[str, Any]] = {
    "medium": {"heads": 8, "head_dim": 64, "double": 4, "single": 8, "text_dim": 256},
    "large": {"heads": 16, "head_dim": 64, "double": 4, "single": 8, "text_dim": 256},
}
_FORMAT = 1  # bump when the build changes, so stale caches are rebuilt


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table (what CLIP's BPE vocab is built on)."""
    bs = list(range(ord("!"), ord("~") + 1))
    bs += list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def _tokenizers() -> tuple[Any, Any]:
    from transformers import CLIPTokenizer, T5TokenizerFast

    chars = list(_bytes_to_unicode().values())
    merges = [("t", "h"), ("th", "e</w>"), ("a", "n"), ("i", "n"), ("e", "r</w>")]
    vocab_list = chars + [c + "</w>" for c in chars]
    vocab_list += [a + b for a, b in merges]
    vocab_list += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(vocab_list))}
    clip = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=77)

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [(f"▁{w}", -3.0) for w in ("a", "the", "cat", "jaguar", "in")]
    letters = "abcdefghijklmnopqrstuvwxyz0123456789.,"
    pieces += [(c, -5.0) for c in letters] + [(f"▁{c}", -5.5) for c in letters]
    t5 = T5TokenizerFast(vocab=pieces, extra_ids=100, model_max_length=512)
    return clip, t5


def build_pipeline(size: str) -> Any:
    """Build (in memory) a random-weight FluxPipeline of the given size.

    Args:
        size: ``"medium"`` or ``"large"``.

    Returns:
        The ``FluxPipeline`` (fp32, CPU).
    """
    import torch
    from diffusers import (
        AutoencoderKL,
        FlowMatchEulerDiscreteScheduler,
        FluxPipeline,
        FluxTransformer2DModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    cfg = CONFIGS[size]
    torch.manual_seed(0)
    clip_tok, t5_tok = _tokenizers()
    clip_dim = 64
    transformer = FluxTransformer2DModel(
        patch_size=1,
        in_channels=64,
        num_layers=cfg["double"],
        num_single_layers=cfg["single"],
        attention_head_dim=cfg["head_dim"],
        num_attention_heads=cfg["heads"],
        joint_attention_dim=cfg["text_dim"],
        pooled_projection_dim=clip_dim,
        guidance_embeds=False,
        axes_dims_rope=(16, 24, 24),
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(32, 32, 64, 64),
        layers_per_block=1,
        latent_channels=16,
        norm_num_groups=32,
        use_quant_conv=False,
        use_post_quant_conv=False,
        shift_factor=0.1159,
        scaling_factor=0.3611,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(clip_tok),
            hidden_size=clip_dim,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            projection_dim=clip_dim,
            hidden_act="quick_gelu",
            bos_token_id=clip_tok.bos_token_id,
            eos_token_id=clip_tok.eos_token_id,
            pad_token_id=clip_tok.pad_token_id,
        )
    )
    text_encoder_2 = T5EncoderModel(
        T5Config(
            vocab_size=len(t5_tok),
            d_model=cfg["text_dim"],
            d_kv=32,
            d_ff=512,
            num_layers=2,
            num_heads=8,
            relative_attention_num_buckets=8,
            feed_forward_proj="gated-gelu",
            is_encoder_decoder=False,
            use_cache=False,
            dropout_rate=0.0,
        )
    )
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=1.0,
        use_dynamic_shifting=False,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    for model in (transformer, vae, text_encoder, text_encoder_2):
        model.eval()
    return FluxPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=clip_tok,
        text_encoder_2=text_encoder_2,
        tokenizer_2=t5_tok,
        transformer=transformer,
    )


def ensure_pipeline(size: str, cache_dir: Path = CACHE_DIR) -> Path:
    """The folder of a saved random pipeline of ``size``, building it once.

    Args:
        size: ``"medium"`` or ``"large"``.
        cache_dir: Where builds are cached.

    Returns:
        The pipeline folder (``save_pretrained`` layout, safetensors).
    """
    target = cache_dir / f"flux-{size}-v{_FORMAT}"
    marker = target / "benchmark_build.json"
    if marker.is_file():
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = cache_dir / f".staging-{size}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    pipe = build_pipeline(size)
    pipe.save_pretrained(staging, safe_serialization=True)
    total = sum(f.stat().st_size for f in staging.rglob("*.safetensors"))
    (staging / "benchmark_build.json").write_text(
        json.dumps({"size": size, "config": CONFIGS[size], "safetensors_bytes": total})
    )
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def weight_files(folder: Path) -> list[Path]:
    """Every safetensors file of a pipeline folder, sorted."""
    return sorted(folder.rglob("*.safetensors"))
