"""Input images of image-to-image and inpainting: what is accepted, the bounds, URL fetching.

The request holds an input image as its encoded bytes (PNG, JPEG or WebP), on every transport:
raw ``bytes`` in plain data (Modal, in-process) and standard base64 in JSON. The client also
accepts a path, a PIL image or an ``https`` URL; a path or PIL image becomes bytes while the
request is validated (never on a server: see ``remote`` below), and a URL is fetched by the
client before that (:func:`resolve_image_urls`). A server never fetches a URL.

Every image is checked the same way on the client (before the network) and on the server
(:func:`check_image`): at most :data:`MAX_INPUT_IMAGE_BYTES` encoded bytes and
:data:`MAX_INPUT_IMAGE_PIXELS` pixels, one of the three formats, fully decodable (a truncated
file fails), and no decompression bomb (PIL's own guard, ``PIL.Image.open`` raising
``DecompressionBombError`` above twice ``Image.MAX_IMAGE_PIXELS`` and warning above it, turned
into an error here). Pillow is imported on first use only, so ``import jaguar_sdk`` stays light.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import ipaddress
import os
import socket
import warnings
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urljoin, urlsplit

import httpx

__all__ = [
    "IMAGE_FIELDS",
    "INPUT_IMAGE_FORMATS",
    "MAX_INPUT_IMAGE_BYTES",
    "MAX_INPUT_IMAGE_PIXELS",
    "ImageInput",
    "SupportsImageSave",
    "aresolve_image_urls",
    "aresolve_many_urls",
    "check_image",
    "coerce_image",
    "fetch_image_url",
    "image_rule",
    "image_size",
    "is_url",
    "resolve_image_urls",
    "resolve_many_urls",
]

#: The request fields that hold an input image.
IMAGE_FIELDS: tuple[str, ...] = ("image", "mask")
#: Largest encoded input image (each of ``image`` and ``mask``).
MAX_INPUT_IMAGE_BYTES = 10 * 1024 * 1024
#: Most pixels an input image may have (4096 x 4096); it is resized to the output size anyway.
MAX_INPUT_IMAGE_PIXELS = 4096 * 4096
#: Pillow format names accepted as input.
INPUT_IMAGE_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "WEBP")
#: Seconds the client waits for an image URL (connect and each read).
URL_TIMEOUT_S = 30.0
#: Redirects followed when fetching an image URL (each hop is checked again).
MAX_URL_REDIRECTS = 3


@runtime_checkable
class SupportsImageSave(Protocol):
    """What the client needs of an in-memory image: a PIL ``Image.Image`` has it."""

    @property
    def size(self) -> tuple[int, int]: ...

    def save(self, fp: Any, format: str | None = None, **params: Any) -> None: ...


#: What the client accepts for an input image: encoded bytes, base64 text, a path, a PIL image,
#: or an ``https`` URL (fetched by the client).
ImageInput = bytes | str | os.PathLike[str] | SupportsImageSave


def image_rule() -> str:
    """The allowed values of an image field, in words (quoted in every error about one)."""
    return (
        f"a {', '.join(INPUT_IMAGE_FORMATS[:-1])} or {INPUT_IMAGE_FORMATS[-1]} image of at most "
        f"{MAX_INPUT_IMAGE_BYTES // (1024 * 1024)} MiB and {MAX_INPUT_IMAGE_PIXELS / 1e6:.1f} "
        "megapixels: bytes, a path, a PIL image or an https URL on the client; base64 in JSON"
    )


def is_url(value: Any) -> bool:
    """Whether ``value`` is a URL string (any scheme), as opposed to base64 image data."""
    return isinstance(value, str) and "://" in value[:16]


def coerce_image(value: Any, *, remote: bool) -> bytes:
    """Turn an accepted input into encoded image bytes (not yet checked: see :func:`check_image`).

    Args:
        value: Bytes, base64 text, or (``remote=False`` only) a path or a PIL image.
        remote: The value came over the wire to a server: only bytes or base64 text, never a
            path (a server never reads its own files for a caller) or an object.

    Returns:
        The encoded bytes.

    Raises:
        ValueError: A URL (fetched by the client only), malformed base64, a missing file, or a
            type that is not accepted.
    """
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        if is_url(value):
            raise ValueError(
                "a URL is fetched by the client, never by a server: pass it to the client "
                "(client.generate(image=url)) or send the image bytes"
            )
        text = "".join(value.split())
        if text.startswith("data:") and "," in text:  # a data URL: data:image/png;base64,....
            text = text.split(",", 1)[1]
        text += "=" * (-len(text) % 4)
        try:
            return base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("must be base64-encoded image bytes") from None
    if not remote and isinstance(value, os.PathLike):
        path = os.fspath(value)
        try:
            size = os.path.getsize(path)
            if size > MAX_INPUT_IMAGE_BYTES:
                raise ValueError(f"{path!r} is {size} bytes, above the limit")
            with open(path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise ValueError(f"cannot read {path!r}: {exc.strerror or exc}") from None
    if not remote and isinstance(value, SupportsImageSave):
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")  # lossless: the model sees exactly these pixels
        return buffer.getvalue()
    kind = "bytes or base64 text" if remote else "bytes, a path, a PIL image or an https URL"
    raise ValueError(f"must be {kind} (got {type(value).__name__})")


def _open(data: bytes) -> Any:
    from PIL import Image

    with warnings.catch_warnings():
        # PIL warns above Image.MAX_IMAGE_PIXELS and raises above twice that (Image.py,
        # _decompression_bomb_check): both are refusals here.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            return Image.open(io.BytesIO(data))
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ValueError("is a decompression bomb (too many pixels for its size)") from None
        except (OSError, SyntaxError, ValueError):
            raise ValueError("is not a PNG, JPEG or WebP image Pillow can read") from None


def image_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of encoded image bytes, from the header only (nothing decoded)."""
    size: tuple[int, int] = _open(data).size
    return size


def check_image(data: bytes) -> tuple[int, int]:
    """Check encoded input-image bytes against every bound; decode them fully once.

    Args:
        data: The encoded bytes.

    Returns:
        ``(width, height)``.

    Raises:
        ValueError: Empty, too large, not one of the formats, too many pixels, a decompression
            bomb, or truncated / corrupt.

    Example:
        >>> import io
        >>> from PIL import Image
        >>> buffer = io.BytesIO(); Image.new("RGB", (32, 16)).save(buffer, format="PNG")
        >>> check_image(buffer.getvalue())
        (32, 16)
    """
    if not data:
        raise ValueError("is empty")
    if len(data) > MAX_INPUT_IMAGE_BYTES:
        raise ValueError(f"is {len(data)} bytes, above the limit of {MAX_INPUT_IMAGE_BYTES}")
    image = _open(data)
    if image.format not in INPUT_IMAGE_FORMATS:
        raise ValueError(f"is a {image.format} image; send PNG, JPEG or WebP")
    width, height = image.size
    if width < 1 or height < 1 or width * height > MAX_INPUT_IMAGE_PIXELS:
        raise ValueError(
            f"is {width}x{height} pixels, above the limit of {MAX_INPUT_IMAGE_PIXELS} pixels"
        )
    try:
        image.load()  # decodes every pixel: a truncated or corrupt file fails here
    except (OSError, SyntaxError, ValueError):
        raise ValueError("is truncated or corrupt (it does not decode)") from None
    return int(width), int(height)


# --- URLs: fetched by the client only ---------------------------------------------------------
def resolve_host(host: str) -> list[str]:
    """The addresses ``host`` resolves to (``socket.getaddrinfo``); tests replace it."""
    infos = socket.getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


#: Resolves a host name to its addresses (module attribute so tests can model DNS).
resolver: Callable[[str], list[str]] = resolve_host
#: httpx transports for image URLs (``None``: the network); tests model an https server here.
sync_url_transport: httpx.BaseTransport | None = None
async_url_transport: httpx.AsyncBaseTransport | None = None


def check_url(url: str, field: str) -> None:
    """Refuse a URL the client must not fetch: not https, or a host that is not public.

    Raises:
        InvalidRequestError: Naming ``field``: not ``https``, no host, or a host resolving to
            a private, loopback, link-local or otherwise non-public address.
    """
    from ._exceptions import InvalidRequestError

    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.hostname:
        raise InvalidRequestError(
            f"{field}: only https URLs are fetched (got {url[:80]!r})", field=field
        )
    host = parts.hostname
    try:
        addresses = [host] if _is_ip(host) else resolver(host)
    except OSError as exc:
        raise InvalidRequestError(f"{field}: cannot resolve {host!r}: {exc}", field=field) from None
    for address in addresses or [""]:
        try:
            public = ipaddress.ip_address(address.split("%")[0]).is_global
        except ValueError:
            public = False
        if not public:
            raise InvalidRequestError(
                f"{field}: {host!r} is a private or local address ({address or 'none'}); only "
                "public https URLs are fetched. Read the file and pass the bytes instead.",
                field=field,
            )


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _url_error(field: str, url: str, why: str) -> Exception:
    from ._exceptions import InvalidRequestError

    return InvalidRequestError(f"{field}: could not fetch {url[:80]!r}: {why}", field=field)


def _next_url(field: str, url: str, response: httpx.Response) -> str | None:
    """The redirect target to follow, or ``None`` when ``response`` is the answer."""
    if response.is_redirect:
        location = response.headers.get("location")
        if not location:
            raise _url_error(field, url, "a redirect without a Location")
        return str(urljoin(url, location))
    if not response.is_success:
        raise _url_error(field, url, f"HTTP {response.status_code}")
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_INPUT_IMAGE_BYTES:
        raise _url_error(field, url, f"{declared} bytes, above the limit")
    return None


def _append(field: str, url: str, body: bytearray, chunk: bytes) -> None:
    body.extend(chunk)
    if len(body) > MAX_INPUT_IMAGE_BYTES:
        raise _url_error(field, url, f"more than {MAX_INPUT_IMAGE_BYTES} bytes")


def fetch_image_url(url: str, field: str = "image") -> bytes:
    """Download an image URL on the client: https only, public hosts only, bounded size.

    Every redirect hop is checked like the first URL. No credentials of the client are sent.

    Args:
        url: The ``https`` URL.
        field: The request field, named in errors.

    Returns:
        The body (checked as an image when the request is validated).

    Raises:
        InvalidRequestError: A refused URL, an HTTP error, a body above the limit, or a
            network failure, naming ``field``.
    """
    with httpx.Client(transport=sync_url_transport, timeout=URL_TIMEOUT_S) as client:
        for _ in range(MAX_URL_REDIRECTS + 1):
            check_url(url, field)
            try:
                with client.stream("GET", url) as response:
                    target = _next_url(field, url, response)
                    if target is None:
                        body = bytearray()
                        for chunk in response.iter_bytes():
                            _append(field, url, body, chunk)
                        return bytes(body)
            except httpx.HTTPError as exc:
                raise _url_error(field, url, f"{type(exc).__name__}: {exc}") from None
            url = target
    raise _url_error(field, url, f"more than {MAX_URL_REDIRECTS} redirects")


async def afetch_image_url(url: str, field: str = "image") -> bytes:
    """:func:`fetch_image_url` for asyncio (same checks; DNS in a worker thread)."""
    async with httpx.AsyncClient(transport=async_url_transport, timeout=URL_TIMEOUT_S) as client:
        for _ in range(MAX_URL_REDIRECTS + 1):
            await asyncio.to_thread(check_url, url, field)
            try:
                async with client.stream("GET", url) as response:
                    target = _next_url(field, url, response)
                    if target is None:
                        body = bytearray()
                        async for chunk in response.aiter_bytes():
                            _append(field, url, body, chunk)
                        return bytes(body)
            except httpx.HTTPError as exc:
                raise _url_error(field, url, f"{type(exc).__name__}: {exc}") from None
            url = target
    raise _url_error(field, url, f"more than {MAX_URL_REDIRECTS} redirects")


def resolve_image_urls(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The request fields with every image URL replaced by its bytes (fetched here).

    Args:
        fields: Request fields (keyword arguments, or an item of ``generate_many``).

    Returns:
        A copy; fields other than ``image`` and ``mask`` are untouched.

    Raises:
        InvalidRequestError: A URL that is refused or cannot be fetched, naming its field.
    """
    out = dict(fields)
    for name in IMAGE_FIELDS:
        if is_url(out.get(name)):
            out[name] = fetch_image_url(out[name], name)
    return out


async def aresolve_image_urls(fields: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`resolve_image_urls` for asyncio."""
    out = dict(fields)
    for name in IMAGE_FIELDS:
        if is_url(out.get(name)):
            out[name] = await afetch_image_url(out[name], name)
    return out


def _has_url(item: Any) -> bool:
    return isinstance(item, Mapping) and any(is_url(item.get(name)) for name in IMAGE_FIELDS)


def _as_items(items: Any) -> list[Any] | None:
    """The items of ``generate_many`` as a list, or ``None`` for what is not a list of items (a
    single string, say: the caller's own check names the mistake)."""
    if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
        return None
    return list(items)


def resolve_many_urls(items: Any) -> Any:
    """The items of ``generate_many`` with the image URLs of dict items fetched.

    A URL that cannot be fetched makes that item its :class:`InvalidRequestError`, in place
    (one bad item never loses the others). Anything that is not a list of items is returned as
    is.
    """
    from ._exceptions import InvalidRequestError

    listed = _as_items(items)
    if listed is None:
        return items
    for index, item in enumerate(listed):
        try:
            listed[index] = resolve_image_urls(item) if _has_url(item) else item
        except InvalidRequestError as exc:
            listed[index] = exc
    return listed


async def aresolve_many_urls(items: Any) -> Any:
    """:func:`resolve_many_urls` for asyncio."""
    from ._exceptions import InvalidRequestError

    listed = _as_items(items)
    if listed is None:
        return items
    for index, item in enumerate(listed):
        try:
            listed[index] = await aresolve_image_urls(item) if _has_url(item) else item
        except InvalidRequestError as exc:
            listed[index] = exc
    return listed
