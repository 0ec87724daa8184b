"""The tiny model: deterministic, offline, loadable by stock diffusers, shaped like Jaguar."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

from jaguar_sdk.engine import TINY_MODEL_NAME, build_tiny_model  # noqa: E402


def _hashes(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_build_is_deterministic(tiny_model_dir: Path, tmp_path: Path) -> None:
    again = build_tiny_model(tmp_path / "again")
    first, second = _hashes(tiny_model_dir), _hashes(again)
    assert "model_index.json" in first
    assert "transformer/diffusion_pytorch_model.safetensors" in first
    assert first == second


def test_other_seed_gives_other_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    other = _hashes(build_tiny_model(tmp_path / "seed1", seed=1))
    name = "transformer/diffusion_pytorch_model.safetensors"
    assert other[name] != _hashes(tiny_model_dir)[name]


def test_loads_with_stock_diffusers(tiny_model_dir: Path) -> None:
    pipe = diffusers.FluxPipeline.from_pretrained(
        tiny_model_dir, dtype=torch.float32, local_files_only=True
    )
    assert TINY_MODEL_NAME == "tiny"
    assert pipe.vae.config.latent_channels == 16
    assert pipe.transformer.config.in_channels == 64
    assert pipe.vae_scale_factor == 8
    assert pipe.transformer.config.guidance_embeds is False
    assert isinstance(pipe.scheduler, diffusers.FlowMatchEulerDiscreteScheduler)
    assert pipe.scheduler.config.use_dynamic_shifting is False
    assert pipe.scheduler.config.shift == 1.0
    assert pipe.tokenizer.model_max_length == 77
    assert pipe.tokenizer_2.model_max_length == 512


def test_small_on_disk(tiny_model_dir: Path) -> None:
    size = sum(p.stat().st_size for p in tiny_model_dir.rglob("*") if p.is_file())
    assert size < 2 * 1024 * 1024


def test_sizes_parametrise_the_one_builder() -> None:
    from dataclasses import replace

    from jaguar_sdk.engine.tiny import TINY, RandomFluxSizes, build_random_flux_pipeline

    wider = replace(TINY, num_attention_heads=4, t5_d_model=48, clip_hidden_size=24)
    pipe = build_random_flux_pipeline(wider, seed=0)
    config = pipe.transformer.config
    assert (config.num_attention_heads, config.attention_head_dim) == (4, 16)
    assert config.joint_attention_dim == pipe.text_encoder_2.config.d_model == 48
    assert config.pooled_projection_dim == pipe.text_encoder.config.hidden_size == 24
    with pytest.raises(ValueError, match="axes_dims_rope"):
        RandomFluxSizes(attention_head_dim=32)
    with pytest.raises(ValueError, match="vae_norm_num_groups"):
        RandomFluxSizes(vae_norm_num_groups=3)


def test_sizes_set_vocab_vae_depth_and_t5_buckets() -> None:
    from jaguar_sdk.engine.tiny import RandomFluxSizes, build_random_flux_pipeline

    sizes = RandomFluxSizes(
        clip_vocab_size=1000,
        t5_vocab_size=700,
        vae_layers_per_block=2,
        t5_relative_attention_num_buckets=32,
    )
    pipe = build_random_flux_pipeline(sizes, seed=0)
    assert pipe.text_encoder.config.vocab_size == 1000
    assert pipe.text_encoder.get_input_embeddings().num_embeddings == 1000
    assert pipe.text_encoder_2.config.vocab_size == 700
    assert pipe.vae.config.layers_per_block == 2
    assert pipe.text_encoder_2.config.relative_attention_num_buckets == 32
    with pytest.raises(ValueError, match=r"clip_vocab_size must be at least the tokenizer's"):
        build_random_flux_pipeline(RandomFluxSizes(clip_vocab_size=10), seed=0)
    with pytest.raises(ValueError, match=r"t5_vocab_size must be at least the tokenizer's"):
        build_random_flux_pipeline(RandomFluxSizes(t5_vocab_size=10), seed=0)
