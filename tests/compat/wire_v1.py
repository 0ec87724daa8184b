"""Wire schema v1 as the first release (0.1.0, commit 9f49c56) shipped it, frozen.

An *old server*: :func:`old_server_app` validates generate requests exactly as a deployment of
that release did (its request model, ``extra="forbid"``: an unknown field is a 422 naming it),
and records every body it receives. An *old client*: :data:`V1_CLIENT_BODY` is the body that
release's ``client.generate("a cat", width=64, height=64)`` sent: every field, defaults and
nulls included (``GenerateRequest.model_dump_json()`` of 0.1.0). Do not edit either to follow
the current code: they stand for software already deployed and installed.
"""

from __future__ import annotations

import base64
import io
import json
from typing import Annotated, Any, Literal

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

StrictInt = Annotated[int, Field(strict=True)]

#: The body the 0.1.0 client sent for generate("a cat", width=64, height=64).
V1_CLIENT_BODY: dict[str, Any] = {
    "prompt": "a cat",
    "width": 64,
    "height": 64,
    "steps": 4,
    "guidance_scale": 3.5,
    "seed": None,
    "num_images": 1,
    "output_format": "jpeg",
    "quality": 90,
    "max_sequence_length": 256,
}


class V1GenerateRequest(BaseModel):
    """The 0.1.0 request model (bounds as shipped)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(min_length=1, max_length=2000)
    width: StrictInt = Field(1024, ge=64, le=2048, multiple_of=16)
    height: StrictInt = Field(1024, ge=64, le=2048, multiple_of=16)
    steps: StrictInt = Field(4, ge=1, le=50)
    guidance_scale: float = Field(3.5, ge=0.0, le=20.0, allow_inf_nan=False)
    seed: StrictInt | None = Field(None, ge=0, le=2**32 - 1)
    num_images: StrictInt = Field(1, ge=1, le=4)
    output_format: Literal["png", "jpeg", "webp"] = "jpeg"
    quality: StrictInt = Field(90, ge=1, le=100)
    max_sequence_length: StrictInt = Field(256, ge=16, le=512)


def _image(width: int, height: int) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 20, 30)).save(buffer, format="JPEG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def old_server_app(received: list[dict[str, Any]]) -> Starlette:
    """A 0.1.0 server's ``POST /v1/generate``: v1 validation, a v1 result, bodies recorded."""

    async def generate(request: Request) -> JSONResponse:
        body = json.loads(await request.body())
        received.append(body)
        try:
            req = V1GenerateRequest.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = str(first["loc"][0]) if first["loc"] else None
            return JSONResponse(
                {"error": {"code": "invalid_request", "message": f"{field}: {first['msg']}",
                           "field": field, "request_id": "req_old"}},
                status_code=422,
            )  # fmt: skip
        result = {
            "schema_version": 1,
            "request_id": "req_old",
            "prompt": req.prompt,
            "seed": req.seed if req.seed is not None else 42,
            "images": [
                {"data": _image(req.width, req.height), "format": "jpeg",
                 "width": req.width, "height": req.height}
            ],
            "timings": {"queue_s": 0, "load_s": 0, "inference_s": 0, "decode_s": 0,
                        "encode_s": 0, "total_s": 0},
            "model": {"id": "old", "revision": None, "source": "local"},
        }  # fmt: skip
        return JSONResponse(result)

    return Starlette(routes=[Route("/v1/generate", generate, methods=["POST"])])
