"""Generated images: bytes with their format and size, plus saving, PIL and Jupyter display."""

from __future__ import annotations

import base64
import binascii
import io
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage


__all__ = ["GeneratedImage"]

_EXTENSIONS = {"png": ".png", "jpeg": ".jpg", "webp": ".webp"}
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
_FORMAT_BY_SUFFIX = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".webp": "webp"}


def _bytes_from_base64(value: Any) -> Any:
    """Accept raw bytes (plain data) or base64 text (JSON), standard or URL-safe alphabet.

    Decoding is on every result's path (~30% of the client's own CPU per call at 1024x1024),
    so the text is copied only when it holds URL-safe characters, and checked by
    ``binascii.a2b_base64(strict_mode=True)`` (Python >= 3.11: the alphabet check in C) instead
    of ``b64decode(validate=True)``, which runs a regular expression over the text first
    (``base64.py``, ``b64decode``).
    """
    if isinstance(value, str):
        text = value.strip()
        if "-" in text or "_" in text:
            text = text.replace("-", "+").replace("_", "/")
        text += "=" * (-len(text) % 4)
        try:
            return _decode_base64(text)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("image data must be base64") from exc
    return value


if sys.version_info >= (3, 11):

    def _decode_base64(text: str) -> bytes:
        return binascii.a2b_base64(text, strict_mode=True)

else:  # pragma: no cover - Python 3.10

    def _decode_base64(text: str) -> bytes:
        return base64.b64decode(text, validate=True)


#: Bytes that travel as *standard* base64 in JSON (pydantic's own "base64" mode writes the
#: URL-safe alphabet, which ``base64.b64decode`` and browsers' ``atob`` decode wrongly).
Base64Bytes = Annotated[
    bytes,
    BeforeValidator(_bytes_from_base64),
    PlainSerializer(
        lambda b: base64.b64encode(b).decode("ascii"), return_type=str, when_used="json"
    ),
]


class GeneratedImage(BaseModel):
    """One encoded image.

    Attributes:
        data: The encoded bytes (PNG, JPEG or WebP).
        format: ``"png"``, ``"jpeg"`` or ``"webp"``.
        width: Width in pixels.
        height: Height in pixels.

    Example:
        >>> result = client.generate("a jaguar")  # doctest: +SKIP
        >>> result.image.save("jaguar.png")        # doctest: +SKIP
        PosixPath('jaguar.png')
    """

    model_config = ConfigDict(frozen=True)

    data: Base64Bytes
    format: Literal["png", "jpeg", "webp"]
    width: int
    height: int

    @property
    def mime_type(self) -> str:
        """The MIME type, e.g. ``"image/jpeg"``."""
        return _MIME[self.format]

    @property
    def extension(self) -> str:
        """The usual file extension, with its dot, e.g. ``".jpg"``."""
        return _EXTENSIONS[self.format]

    def to_base64(self) -> str:
        """The bytes as base64 text."""
        return base64.b64encode(self.data).decode("ascii")

    def to_pil(self) -> PILImage:
        """Decode to a ``PIL.Image.Image`` (Pillow is a core dependency)."""
        from PIL import Image

        image = Image.open(io.BytesIO(self.data))
        image.load()
        return image

    def save(self, path: str | os.PathLike[str] = ".", *, stem: str = "jaguar") -> Path:
        """Write the image to a file or into a folder.

        Args:
            path: A file path whose extension (.png, .jpg/.jpeg, .webp) picks the format, or an
                existing folder (or one ending in a separator), where the file is named
                ``{stem}{extension}``. If the extension names another format than the image's,
                the image is converted.
            stem: File name (without extension) used when ``path`` is a folder.

        Returns:
            The path written.

        Raises:
            ValueError: If the extension is not one of .png, .jpg, .jpeg, .webp.
        """
        target = Path(path)
        as_folder = target.is_dir() or str(path).endswith(("/", os.sep)) or not target.suffix
        if as_folder:
            target.mkdir(parents=True, exist_ok=True)
            target = target / f"{stem}{self.extension}"
        wanted = _FORMAT_BY_SUFFIX.get(target.suffix.lower())
        if wanted is None:
            raise ValueError(f"cannot save as {target.suffix!r}: use .png, .jpg, .jpeg or .webp")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.partial")
        if wanted == self.format:
            tmp.write_bytes(self.data)
        else:
            self.to_pil().convert("RGB").save(tmp, format=wanted.upper())
        os.replace(tmp, target)  # never leave a half-written image under the final name
        return target

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        return {
            self.mime_type: self.data,
            "text/plain": repr(self),
        }

    def _repr_html_(self) -> str:
        return (
            f'<img src="data:{self.mime_type};base64,{self.to_base64()}" '
            f'width="{self.width}" height="{self.height}" style="max-width:100%;height:auto"/>'
        )

    def __repr__(self) -> str:
        return (
            f"GeneratedImage(format={self.format!r}, width={self.width}, "
            f"height={self.height}, bytes={len(self.data)})"
        )
