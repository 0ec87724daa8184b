"""The request surface is written once: the model, and everything checked against it."""

from __future__ import annotations

import argparse
import typing
from pathlib import Path
from typing import Any

import pytest

from jaguar_sdk import GenerateParams, GenerateRequest, JaguarClient
from jaguar_sdk._request import PARAM_NAMES
from jaguar_sdk.cli import build_parser


def _plain(annotation: Any) -> Any:
    """``Annotated[int, Strict()] | None`` -> ``int | None``; ``Literal[...]`` as is."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _plain(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, __import__("types").UnionType):
        return frozenset(_plain(a) for a in typing.get_args(annotation))
    return annotation


def _accepts(param: Any, model: Any) -> bool:
    """The keyword's type is the field's, or wider (the client turns more into the field's:
    a path or a PIL image into image bytes, a string into an adapter)."""
    if _plain(param) == _plain(model):
        return True
    if typing.get_origin(param) is list and typing.get_origin(model) is list:
        return _accepts(typing.get_args(param)[0], typing.get_args(model)[0])
    wide, narrow = _plain(param), _plain(model)
    wide = wide if isinstance(wide, frozenset) else frozenset({wide})
    narrow = narrow if isinstance(narrow, frozenset) else frozenset({narrow})
    return narrow <= wide


def test_the_keyword_arguments_mirror_the_model() -> None:
    hints = typing.get_type_hints(GenerateParams, include_extras=True)
    fields = {k: v for k, v in GenerateRequest.model_fields.items() if k != "prompt"}
    assert set(hints) == set(fields) == PARAM_NAMES
    widened = set()
    for name, info in fields.items():
        assert _accepts(hints[name], info.annotation), name
        if _plain(hints[name]) != _plain(info.annotation):
            widened.add(name)
    assert widened == {"image", "mask", "loras"}  # the inputs the client converts
    assert not _accepts(int, str) and _accepts(int | None, int)


def _generate_parser() -> argparse.ArgumentParser:
    root = build_parser()
    sub = next(a for a in root._actions if isinstance(a, argparse._SubParsersAction))
    parser = sub.choices["generate"]
    assert isinstance(parser, argparse.ArgumentParser)
    return parser


def test_the_cli_has_a_flag_for_every_field() -> None:
    dests = {action.dest for action in _generate_parser()._actions}
    assert set(GenerateRequest.model_fields) <= dests  # "prompt" is the positional


def test_cli_flags_carry_the_model_description_and_range() -> None:
    actions = {a.dest: a for a in _generate_parser()._actions}
    assert "multiple of 16 from 64 to 2048" in (actions["width"].help or "")
    assert actions["width"].type is int and actions["seed"].type is int
    assert actions["guidance_scale"].type is float
    args = _generate_parser().parse_args(["a cat", "--seed", "7", "--max-sequence-length", "77"])
    assert (args.seed, args.max_sequence_length, args.width) == (7, 77, None)


_READ: set[str] = set()


class _SpyRequest(GenerateRequest):
    """Records every field read from it."""

    def __getattribute__(self, name: str) -> Any:
        if name in GenerateRequest.model_fields:
            _READ.add(name)
        return super().__getattribute__(name)


def test_the_engine_reads_every_field(lora_engine: Any) -> None:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), 90).save(buffer, format="PNG")
    image = buffer.getvalue()
    _READ.clear()
    for request in (  # text to image, then inpainting with an adapter: between them, every field
        _SpyRequest(prompt="a cat", width=64, height=64, seed=1),
        _SpyRequest(
            prompt="a cat",
            seed=1,
            image=image,
            mask=image,
            strength=0.5,
            loras=["volume:loras/style.safetensors:0.7"],
        ),
    ):
        lora_engine.generate(request, request_id="req_spy")
    assert set(GenerateRequest.model_fields) <= _READ


def test_an_explicit_argument_wins_over_the_request(tiny_model_dir: Path) -> None:
    with JaguarClient.local(model=str(tiny_model_dir), device="cpu") as client:
        base = GenerateRequest(prompt="a cat", width=64, height=64, seed=3)
        result = client.generate(base, width=128)
        assert (result.image.width, result.image.height, result.seed) == (128, 64, 3)
        # even when the explicit value equals the model default
        wide = GenerateRequest(prompt="a cat", width=64, height=64, steps=2, seed=3)
        assert client.generate(wide, steps=4, num_images=1).image.width == 64


def test_unknown_keywords_fail_like_python_and_suggest() -> None:
    client = JaguarClient(base_url="http://127.0.0.1:9")
    with pytest.raises(TypeError, match=r"'stpes'.*did you mean 'steps'"):
        client.generate("a cat", stpes=4)  # type: ignore[call-arg]
    client.close()


def test_a_strength_too_small_to_run_a_step_is_refused_by_name() -> None:
    import io

    from PIL import Image

    from jaguar_sdk import InvalidRequestError, validate_request

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, format="PNG")
    image = buffer.getvalue()
    # 5e-324 once reached diffusers, which ran zero steps and failed with a 500 (schemathesis)
    for strength in (5e-324, 1e-17, 0.009):
        with pytest.raises(InvalidRequestError) as info:
            validate_request({"prompt": "a", "image": image, "strength": strength})
        assert info.value.field == "strength" and "from 0.01 to 1" in info.value.message
    assert validate_request({"prompt": "a", "image": image, "strength": 0.01}).strength == 0.01


def test_every_request_survives_its_own_dump() -> None:
    # A full dump (what a 0.1.0-style client sends: every field, defaults included) must
    # validate again; a text-only request once failed here on strength's default.
    from jaguar_sdk import validate_request

    for request in (
        GenerateRequest(prompt="a cat"),
        GenerateRequest(prompt="a cat", width=512, seed=3, loras=["owner/style:0.5"]),
    ):
        for mode in ("python", "json"):
            assert validate_request(request.model_dump(mode=mode)) == request  # type: ignore[arg-type]
