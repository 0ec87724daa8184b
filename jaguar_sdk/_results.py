"""What comes back: results, model info, health, progress and job status.

These models are the wire contract of every answer, shared by every transport: HTTP sends them
as JSON (image bytes base64-encoded), Modal methods as plain dicts (image bytes raw), and the
in-process engine passes the objects themselves.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import _constants as C
from ._exceptions import IncompatibleVersionError
from ._images import GeneratedImage

__all__ = [
    "FINISHED_STATES",
    "GenerationResult",
    "HealthStatus",
    "JobState",
    "JobStatus",
    "ModelInfo",
    "ModelRef",
    "ModelSource",
    "ProgressEvent",
    "ProgressStage",
    "Timings",
    "WebhookDelivery",
    "check_schema_version",
]

ModelSource = Literal["volume", "huggingface", "local"]


class _Wire(BaseModel):
    """Base of every answer model (immutable; image bytes travel as standard base64 in JSON)."""

    model_config = ConfigDict(frozen=True)


def check_schema_version(payload: dict[str, Any]) -> None:
    """Refuse a plain-data payload written for another wire-schema version.

    Raises:
        IncompatibleVersionError: With both versions and what to upgrade.
    """
    version = payload.get("schema_version", C.SCHEMA_VERSION)
    if version != C.SCHEMA_VERSION:
        raise IncompatibleVersionError(
            f"The server speaks wire schema v{version} but this jaguar_sdk speaks "
            f"v{C.SCHEMA_VERSION}. Upgrade the older side: `pip install -U jaguar-sdk` on the "
            "client, or redeploy the server with the current jaguar_sdk."
        )


class Timings(_Wire):
    """Seconds spent in each stage of one request.

    Attributes:
        queue_s: Waiting for the GPU behind other requests.
        load_s: Loading the model when this request found it unloaded (0 when warm).
        inference_s: Text encoding and denoising.
        decode_s: VAE decode to pixels.
        encode_s: Encoding the images to the output format.
        total_s: The whole request on the server, from arrival to encoded images.
    """

    queue_s: float = 0.0
    load_s: float = 0.0
    inference_s: float = 0.0
    decode_s: float = 0.0
    encode_s: float = 0.0
    total_s: float = 0.0


class ModelRef(_Wire):
    """Which weights served a request.

    Attributes:
        id: The Hub repo id (``"shuttleai/shuttle-jaguar"``) or a local name such as ``"tiny"``.
        revision: The Hub commit or a content hash, where known.
        source: ``"volume"`` (loaded from the Modal Volume), ``"huggingface"`` (downloaded from
            the Hub at start-up) or ``"local"`` (a local folder).
    """

    id: str
    revision: str | None = None
    source: ModelSource = "local"


class GenerationResult(_Wire):
    """The images of one request and how they were made.

    Shows itself as an image grid with prompt, seed and timings in Jupyter.

    Attributes:
        images: The encoded images, in order.
        seed: The seed actually used (reported even when the request left it random).
        prompt: The prompt as the model saw it.
        timings: Seconds per stage on the server.
        model: Which weights made the images.
        request_id: The server's id for this request; quote it in bug reports.
        schema_version: Wire-schema version of this payload.
    """

    schema_version: int = C.SCHEMA_VERSION
    request_id: str
    prompt: str
    seed: int
    images: list[GeneratedImage]
    timings: Timings
    model: ModelRef

    @property
    def image(self) -> GeneratedImage:
        """The first image (the only one, unless ``num_images`` > 1)."""
        return self.images[0]

    def save(self, path: str | Any = ".", *, stem: str | None = None) -> list[Any]:
        """Save every image; see :meth:`GeneratedImage.save`.

        Args:
            path: A folder (files are named ``{stem}-{seed}-{i}.{ext}``) or, for a single
                image, a file name whose extension picks the format.
            stem: File name prefix in a folder; defaults to ``"jaguar"``.

        Returns:
            The paths written, in order.
        """
        target = Path(path)
        if len(self.images) == 1:
            return [self.images[0].save(target, stem=stem or f"jaguar-{self.seed}")]
        target.mkdir(parents=True, exist_ok=True)
        return [
            img.save(target, stem=f"{stem or 'jaguar'}-{self.seed}-{i}")
            for i, img in enumerate(self.images)
        ]

    def _repr_html_(self) -> str:
        return _render_html(self)


class HealthStatus(_Wire):
    """Liveness and readiness of a server or deployment.

    Attributes:
        status: ``"ok"`` when ready, ``"loading"`` while the model loads, ``"error"`` when the
            last load failed.
        ready: Whether a generate request would run now.
        version: The jaguar_sdk version on the server.
        detail: Why it is not ready, where it is not.
    """

    schema_version: int = C.SCHEMA_VERSION
    status: Literal["ok", "loading", "error"]
    ready: bool
    version: str
    detail: str | None = None


class ModelInfo(_Wire):
    """What a server is serving.

    Attributes:
        model: Model id, revision and where the weights came from.
        device: ``"cuda"``, ``"cpu"``, ...
        dtype: ``"bfloat16"`` on a GPU, ``"float32"`` on CPU.
        loaded: Whether the pipeline is loaded.
        load_timings: Seconds per loading stage (``load_s``, ``to_device_s``, ``warmup_s``...).
        version: The jaguar_sdk version on the server.
        extra: Deployment details (GPU type, compile, snapshot mode, ...).
    """

    schema_version: int = C.SCHEMA_VERSION
    model: ModelRef
    device: str
    dtype: str
    loaded: bool
    load_timings: dict[str, float] = Field(default_factory=dict)
    version: str
    extra: dict[str, Any] = Field(default_factory=dict)


ProgressStage = Literal[
    "queued", "loading", "running", "decoding", "encoding", "done", "failed", "cancelled"
]


class ProgressEvent(_Wire):
    """One progress report of a request.

    Attributes:
        stage: ``queued`` (a job accepted, waiting to run), ``loading``, ``running`` (denoising step
            ``step`` of ``total_steps``), ``decoding``, ``encoding``, ``done``, or (for jobs)
            ``failed`` or ``cancelled``.
        step: Denoising steps finished so far.
        total_steps: Denoising steps in all.
        request_id: The request this event belongs to.
    """

    stage: ProgressStage
    step: int = 0
    total_steps: int = 0
    request_id: str | None = None

    @property
    def fraction(self) -> float:
        """Share of the denoising done, 0.0 to 1.0."""
        if self.stage == "done":
            return 1.0
        return self.step / self.total_steps if self.total_steps else 0.0


#: Where a job is: waiting, generating, or finished one of three ways.
JobState = Literal["queued", "running", "succeeded", "failed", "cancelled"]

#: The states a job never leaves.
FINISHED_STATES: frozenset[str] = frozenset({"succeeded", "failed", "cancelled"})


class WebhookDelivery(_Wire):
    """How a job's webhook delivery went (``JobStatus.webhook``).

    Attributes:
        state: ``pending`` (queued or being retried), ``delivered`` (a 2xx answer) or
            ``failed`` (every attempt failed, or the address was refused).
        attempts: Attempts made so far.
        last_error: Why the last attempt failed (``HTTP 500``, a connection error, a refused
            address), if it did.
    """

    state: Literal["pending", "delivered", "failed"]
    attempts: int = 0
    last_error: str | None = None


class JobStatus(_Wire):
    """Where a submitted job stands (``GET /v1/jobs/{id}``).

    Attributes:
        id: The job id (``job_...`` on a jaguar server, a ``FunctionCall`` id on Modal).
        state: ``queued``, ``running``, ``succeeded``, ``failed`` or ``cancelled``.
        progress: The latest progress event, where the backend reports progress.
        events: Every progress event so far, in order (empty where the backend reports none).
        failure: The error body (``code``, ``message``, ``field``, ``request_id``) of a failed
            job; named ``failure`` so that a status is never mistaken for an error envelope.
        request_id: The request id of the generation.
        created_at: Unix time the job was accepted, where known.
        finished_at: Unix time the job finished, where it has.
        webhook: How the job's webhook delivery went, for a job that asked for one (a
            delivery failure never fails the job).
    """

    schema_version: int = C.SCHEMA_VERSION
    id: str
    state: JobState
    progress: ProgressEvent | None = None
    events: list[ProgressEvent] = Field(default_factory=list)
    failure: dict[str, Any] | None = None
    request_id: str | None = None
    created_at: float | None = None
    finished_at: float | None = None
    webhook: WebhookDelivery | None = None

    @property
    def done(self) -> bool:
        """Whether the job has finished (succeeded, failed or cancelled)."""
        return self.state in FINISHED_STATES


def _render_html(result: GenerationResult) -> str:
    """An HTML grid of a result's images with prompt, seed and timings (for Jupyter)."""
    t = result.timings
    cells = "".join(
        f'<div style="flex:1 1 {max(160, 640 // max(1, len(result.images)))}px;max-width:512px">'
        f'<img src="data:{img.mime_type};base64,{img.to_base64()}" '
        'style="width:100%;height:auto;border-radius:4px"/></div>'
        for img in result.images
    )
    caption = (
        f"<b>{html.escape(result.prompt)}</b><br/>"
        f"seed {result.seed} · {len(result.images)} image(s) · "
        f"{result.images[0].width}x{result.images[0].height} {result.images[0].format} · "
        f"total {t.total_s:.2f}s (inference {t.inference_s:.2f}s, decode {t.decode_s:.2f}s, "
        f"encode {t.encode_s * 1000:.0f}ms) · {html.escape(result.model.id)} "
        f"[{html.escape(result.model.source)}] · request {html.escape(result.request_id)}"
        if result.images
        else html.escape(result.prompt)
    )
    return (
        '<div style="font-family:sans-serif;font-size:12px">'
        f'<div style="display:flex;flex-wrap:wrap;gap:6px">{cells}</div>'
        f'<div style="margin-top:4px;color:#555">{caption}</div></div>'
    )
