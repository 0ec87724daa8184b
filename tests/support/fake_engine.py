"""A fake engine satisfying ``jaguar_sdk.server._service.EngineLike``: real images, no torch.

It answers every request with real encoded images (a flat-colour picture of the requested size
and format, made with Pillow), optionally after a delay, and counts its calls. Tests and
benchmarks use it to exercise the service, the server and the client without a model.

Example:
    >>> from jaguar_sdk.server._service import JaguarService
    >>> engine = FakeEngine(delay_s=0.1)
    >>> service = JaguarService(lambda: engine)
    >>> service.start()
    >>> service.generate({"prompt": "a cat", "width": 64, "height": 64}).images[0].width
    64
    >>> engine.calls
    1
"""

from __future__ import annotations

import io
import random
import threading
import time
from functools import lru_cache

from PIL import Image

from jaguar_sdk._exceptions import NotReadyError
from jaguar_sdk._images import GeneratedImage
from jaguar_sdk._request import GenerateRequest
from jaguar_sdk._results import GenerationResult, ModelInfo, ModelRef, ProgressEvent, Timings
from jaguar_sdk.server._service import ProgressCallback

__all__ = ["FakeEngine", "encode_solid_image"]

_PIL_FORMAT = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}


@lru_cache(maxsize=64)
def encode_solid_image(width: int, height: int, fmt: str, quality: int = 90) -> bytes:
    """A real encoded image of one colour (cached: same arguments, same bytes).

    Args:
        width: Width in pixels.
        height: Height in pixels.
        fmt: ``"png"``, ``"jpeg"`` or ``"webp"``.
        quality: JPEG/WebP quality.

    Returns:
        The encoded bytes.
    """
    image = Image.new("RGB", (width, height), (200, 120, 40))
    buffer = io.BytesIO()
    kwargs = {"quality": quality} if fmt in ("jpeg", "webp") else {"compress_level": 1}
    image.save(buffer, format=_PIL_FORMAT[fmt], **kwargs)
    return buffer.getvalue()


class FakeEngine:
    """An engine that returns fixed real images, optionally slowly, and counts calls.

    Like the real ``Engine``, a closed engine refuses to generate (``NotReadyError``, checked
    once the request holds the engine), and ``serial=True`` runs one generation at a time
    behind a lock, as the real engine serialises GPU work.

    Args:
        delay_s: Seconds each ``generate`` sleeps before answering (simulates inference).
        fail: Make every ``generate`` raise ``RuntimeError`` (the service turns it into a
            ``GenerationError``).
        model_id: The id reported in results and :meth:`info`.
        serial: One generation at a time (the real engine's GPU lock).

    Attributes:
        calls: ``generate`` calls so far (thread-safe).
        requests: The requests received, in order.
        closed: Whether :meth:`close` was called.
        closed_while_busy: Whether :meth:`close` came while a generation was queued or running
            on this engine (a reload must wait for them).
    """

    def __init__(
        self,
        delay_s: float = 0.0,
        fail: bool = False,
        *,
        model_id: str = "fake",
        serial: bool = False,
    ) -> None:
        self.delay_s = delay_s
        self.fail = fail
        self.model_id = model_id
        self.calls = 0
        self.requests: list[GenerateRequest] = []
        self.closed = False
        self.closed_while_busy = False
        self._in_flight = 0
        self._lock = threading.Lock()
        self._gpu = threading.Lock() if serial else None

    def generate(
        self,
        request: GenerateRequest,
        *,
        request_id: str,
        on_progress: ProgressCallback | None = None,
    ) -> GenerationResult:
        """Answer ``request`` with flat-colour images after ``delay_s``."""
        started = time.perf_counter()
        with self._lock:
            self.calls += 1
            self.requests.append(request)
            self._in_flight += 1
        try:
            if self._gpu is None:
                return self._generate(request, request_id, on_progress, started)
            with self._gpu:
                return self._generate(request, request_id, on_progress, started)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _generate(
        self,
        request: GenerateRequest,
        request_id: str,
        on_progress: ProgressCallback | None,
        started: float,
    ) -> GenerationResult:
        if self.closed:  # the real engine: "The engine was closed; load the model again."
            raise NotReadyError("The engine was closed; load the model again.")
        if on_progress is not None:
            on_progress(
                ProgressEvent(
                    stage="running", step=0, total_steps=request.steps, request_id=request_id
                )
            )
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.fail:
            raise RuntimeError("fake engine failure")
        seed = request.seed if request.seed is not None else random.randint(0, 2**32 - 1)
        data = encode_solid_image(
            request.width, request.height, request.output_format, request.quality
        )
        images = [
            GeneratedImage(
                data=data, format=request.output_format, width=request.width, height=request.height
            )
            for _ in range(request.num_images)
        ]
        if on_progress is not None:
            on_progress(
                ProgressEvent(
                    stage="done",
                    step=request.steps,
                    total_steps=request.steps,
                    request_id=request_id,
                )
            )
        total = time.perf_counter() - started
        return GenerationResult(
            request_id=request_id,
            prompt=request.prompt,
            seed=seed,
            images=images,
            timings=Timings(inference_s=self.delay_s, total_s=total),
            model=ModelRef(id=self.model_id, revision="fake", source="local"),
        )

    def info(self) -> ModelInfo:
        """A fixed description of the fake model."""
        from jaguar_sdk._version import __version__

        return ModelInfo(
            model=ModelRef(id=self.model_id, revision="fake", source="local"),
            device="cpu",
            dtype="float32",
            loaded=not self.closed,
            version=__version__,
            extra={"fake": True},
        )

    def close(self) -> None:
        """Mark the engine closed (nothing to release); later generations are refused."""
        with self._lock:
            self.closed_while_busy = self.closed_while_busy or self._in_flight > 0
            self.closed = True
