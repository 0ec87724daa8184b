"""``jaguar generate``, ``jaguar info``, ``jaguar health``, ``jaguar reload``: the client commands.

They share the connection flags: ``--url`` (an HTTP server), ``--token``, ``--local [MODEL]``
(in-process), ``--modal-app``. With none of them, the client resolves its configuration as usual
(environment, then the config file). ``--url`` is saved to the config file only once a call to it
has succeeded, with ``--token`` when that call checked the token (:func:`remember_connection`);
the token is stored for that server's origin and never sent anywhere else.
Failures are raised as :class:`~jaguar_sdk.JaguarError` subclasses; the root ``main`` turns them
into a message on stderr and an exit status (2 invalid input, 3 no configuration, 4 auth,
5 not found, 1 otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import _constants as C
from .._exceptions import InvalidRequestError
from .._extras import import_extra

if TYPE_CHECKING:
    from .._client import JaguarClient
    from .._results import GenerationResult

__all__ = ["client_from_args", "parse_size", "register", "remember_connection"]

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def parse_size(text: str) -> tuple[int, int]:
    """Parse ``--size``: ``"WxH"`` or a single ``"N"`` for a square.

    Args:
        text: The flag's value.

    Returns:
        ``(width, height)``.

    Raises:
        InvalidRequestError: Not of the form WxH or N (bounds are checked by the request).

    Example:
        >>> parse_size("768x512")
        (768, 512)
    """
    parts = text.lower().replace("*", "x").split("x")
    try:
        numbers = [int(part.strip()) for part in parts]
    except ValueError:
        numbers = []
    if len(numbers) == 1:
        return numbers[0], numbers[0]
    if len(numbers) == 2:
        return numbers[0], numbers[1]
    raise InvalidRequestError(
        f"--size must be WIDTHxHEIGHT (e.g. 1024x768) or one number for a square (got {text!r})",
        field="size",
    )


def _add_connection_flags(parser: argparse.ArgumentParser, *, admin: bool = False) -> None:
    group = parser.add_argument_group("connection (default: $JAGUAR_* variables, then config)")
    group.add_argument(
        "--url",
        metavar="URL",
        help="jaguar HTTP server root, e.g. http://127.0.0.1:8000; saved to the user config "
        "file once a call to it succeeds, so later runs need no flag",
    )
    group.add_argument(
        "--token",
        metavar="TOKEN",
        help=f"bearer token of the server (or set ${C.ENV_API_KEY}); saved with --url, for "
        "that server only, once a call has checked it",
    )
    group.add_argument(
        "--local",
        nargs="?",
        const="tiny",
        metavar="MODEL",
        help="run the model in this process: 'tiny' (default) or a model folder",
    )
    group.add_argument("--device", help="device for --local: cpu, cuda, ... (default: best)")
    group.add_argument(
        "--modal-app",
        metavar="APP",
        help=f"call a deployed Modal app (e.g. {C.DEFAULT_MODAL_APP})",
    )
    group.add_argument(
        "--gpu",
        metavar="TYPE",
        help="with --modal-app: run on this GPU type (e.g. H200), a separate pool of containers",
    )
    group.add_argument(
        "--function-timeout",
        type=int,
        metavar="SECONDS",
        help="with --modal-app: seconds one call may run on Modal (1-86400)",
    )
    group.add_argument(
        "--timeout", type=float, metavar="SECONDS", help="read timeout of each attempt"
    )
    if admin:
        group.add_argument(
            "--admin-token",
            metavar="TOKEN",
            help="the server's admin token (default: --token / $JAGUAR_API_KEY)",
        )


def client_from_args(args: argparse.Namespace) -> JaguarClient:
    """Build the client the connection flags ask for (nothing is saved yet).

    Args:
        args: Parsed arguments with the connection flags.

    Returns:
        A ready client.

    Raises:
        ConfigurationError: Conflicting flags, nothing configured anywhere, or a missing extra.
    """
    from .._client import JaguarClient
    from .._exceptions import ConfigurationError

    chosen = [
        flag
        for flag, value in (
            ("--url", args.url),
            ("--local", args.local),
            ("--modal-app", args.modal_app),
        )
        if value
    ]
    if len(chosen) > 1:
        raise ConfigurationError(f"Choose one of {' and '.join(chosen)}, not both.")
    overrides = {"gpu": args.gpu, "function_timeout": args.function_timeout}
    if any(value is not None for value in overrides.values()) and not args.modal_app:
        raise ConfigurationError("--gpu and --function-timeout need --modal-app APP.")
    options: dict[str, Any] = {}
    if args.timeout is not None:
        options["timeout"] = args.timeout
    if args.url:
        return JaguarClient(base_url=args.url.strip().rstrip("/"), api_key=args.token, **options)
    if args.local:
        return JaguarClient.local(model=args.local, device=args.device, **options)
    if args.modal_app:
        return JaguarClient.from_modal(args.modal_app, api_key=args.token, **overrides, **options)
    return JaguarClient(api_key=args.token, **options)


def remember_connection(args: argparse.Namespace, *, token_checked: bool) -> None:
    """After a call that succeeded: save ``--url``, and ``--token`` if the call checked it.

    The call proved the URL (and, where it was authenticated, the token), so a mistyped URL or
    a wrong token never reaches the config file. The token is stored for the URL's origin only.
    Says on stderr what was saved, and what was not.

    Args:
        args: Parsed arguments with the connection flags.
        token_checked: Whether the call that succeeded sent ``--token`` to an authenticated
            route (``health`` does not; ``reload`` with ``--admin-token`` does not).

    Raises:
        ConfigurationError: The config file cannot be written.
    """
    if not args.url:
        return
    from .._config import save_user_config

    url = args.url.strip().rstrip("/")
    save_token = bool(args.token) and token_checked
    path = save_user_config(base_url=url, **({"api_key": args.token} if save_token else {}))
    saved = f"base_url {url}" + (" and its token" if save_token else "")
    print(f"saved {saved} to {path} (mode 0600); later runs need no --url", file=sys.stderr)
    if args.token and not save_token:
        print(
            f"note: --token was not saved: `jaguar {args.command}` does not check it",
            file=sys.stderr,
        )


def _output_paths(result: GenerationResult, output: str) -> list[Path]:
    target = Path(output)
    if len(result.images) > 1 and target.suffix.lower() in _IMAGE_SUFFIXES:
        # one file name for several images: name-0.png, name-1.png, ...
        return [
            image.save(target.with_name(f"{target.stem}-{i}{target.suffix}"))
            for i, image in enumerate(result.images)
        ]
    return [Path(p) for p in result.save(target)]


def _metadata(result: GenerationResult) -> dict[str, Any]:
    data = result.model_dump(mode="json", exclude={"images"})
    data["images"] = [
        {"format": img.format, "width": img.width, "height": img.height, "bytes": len(img.data)}
        for img in result.images
    ]
    return data


def _generate_with_progress(client: JaguarClient, request: Any, tqdm: Any) -> GenerationResult:
    """Run ``request`` as a job, drawing a denoising-step progress bar on stderr."""
    from .._results import ProgressEvent

    job = client.submit(request)
    with tqdm(total=request.steps, desc="jaguar", unit="step", file=sys.stderr) as bar:

        def show(event: ProgressEvent) -> None:
            bar.set_postfix_str(event.stage)
            if event.stage == "running" and event.step > bar.n:
                bar.update(event.step - bar.n)
            elif event.stage == "done":
                bar.update(bar.total - bar.n)

        job.wait(on_progress=show)
    return job.result()


def _generate(args: argparse.Namespace) -> int:
    from .._inputs import resolve_image_urls

    fields = resolve_image_urls(request_fields_from(args))  # an https URL is fetched here
    if args.size:
        if "width" in fields or "height" in fields:
            raise InvalidRequestError(
                "--size sets both --width and --height: give one or the other", field="size"
            )
        fields["width"], fields["height"] = parse_size(args.size)
    from .._request import validate_request

    request = validate_request({"prompt": args.prompt, **fields})  # before any connection
    tqdm = (
        import_extra("tqdm", "progress", what="`jaguar generate --progress`").tqdm
        if args.progress
        else None
    )
    building = time.perf_counter()
    with client_from_args(args) as client:
        # --local loads the model here, in this process: the result's load_s (time the
        # request spent loading) is 0, so this is the load time to show.
        local_load_s = time.perf_counter() - building if args.local else None
        started = time.perf_counter()
        result = (
            _generate_with_progress(client, request, tqdm)
            if tqdm is not None
            else client.generate(request)
        )
        elapsed = time.perf_counter() - started
    remember_connection(args, token_checked=True)
    paths = _output_paths(result, args.output)
    if args.json:
        meta = _metadata(result)
        meta["paths"] = [str(p) for p in paths]
        meta["client_total_s"] = round(elapsed, 4)
        if local_load_s is not None:
            meta["local_load_s"] = round(local_load_s, 4)
        print(json.dumps(meta, indent=2))
    else:
        t = result.timings
        print(
            f"model: {result.model.id} (source: {result.model.source}"
            + (f", revision: {result.model.revision}" if result.model.revision else "")
            + ")"
        )
        print(f"seed: {result.seed}")
        print(f"request_id: {result.request_id}")
        load = (
            f"load {t.load_s:.3f}s"
            if local_load_s is None
            else f"load {local_load_s:.3f}s (in this process: imports and weights)"
        )
        print(
            f"timings: queue {t.queue_s:.3f}s, {load}, inference "
            f"{t.inference_s:.3f}s, decode {t.decode_s:.3f}s, encode {t.encode_s:.3f}s"
        )
        where = "on the server" if local_load_s is None else "in the engine"
        print(f"total: {t.total_s:.3f}s {where}, {elapsed:.3f}s round trip")
        for path in paths:
            print(f"wrote: {path}")
        if result.model.id == "tiny":
            print(
                "note: 'tiny' is a randomly initialised Flux pipeline shaped like Shuttle Jaguar, "
                "built offline; its weights are random, so the image is noise. Serve the real "
                "weights (a local folder, `jaguar serve`, or Modal) for real images.",
                file=sys.stderr,
            )
    if args.display:
        for image in result.images:
            image.to_pil().show()
    return 0


def _update_line(check: dict[str, Any]) -> str:
    """One readable line for model info's ``extra["update_check"]``."""
    latest = check.get("latest_revision")
    when = f"checked {check.get('checked_at') or '?'}"
    if check.get("error"):
        return f"unknown (check failed: {check['error']}; {when})"
    if check.get("update_available"):
        return f"available: {latest} ({when}; run `jaguar model update`)"
    return f"up to date ({latest}; {when})"


def _lora_line(lora: dict[str, Any]) -> str:
    """One readable line for model info's ``extra["lora"]``: mode and cached adapters."""
    if lora.get("unsupported"):
        return f"not available ({lora['unsupported']})"
    cached = lora.get("cached") or []
    head = f"{lora.get('mode')}, {len(cached)} cached (at most {lora.get('max_cached')})"
    shown = [
        f"{item.get('source')} (sha256 {str(item.get('sha256'))[:12]}, used {item.get('uses')}x)"
        for item in cached
    ]
    return head + (": " + ", ".join(shown) if shown else "")


def _print_model(data: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(data, indent=2))
        return
    update = lora = None
    if isinstance(data.get("extra"), dict):
        extra = dict(data["extra"])
        update = (
            extra.pop("update_check", None) if isinstance(extra.get("update_check"), dict) else None
        )
        lora = extra.pop("lora", None) if isinstance(extra.get("lora"), dict) else None
        data = {**data, "extra": extra}
    for key, value in data.items():
        if isinstance(value, dict):
            value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
        print(f"{key}: {value}")
    if update is not None:
        print(f"update: {_update_line(update)}")
    if lora is not None:
        print(f"lora adapters: {_lora_line(lora)}")


def _info(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        info = client.info()
    remember_connection(args, token_checked=True)
    _print_model(info.model_dump(mode="json"), args.json)
    return 0


def _health(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        status = client.health()
    remember_connection(args, token_checked=False)  # health needs no token: it proves none
    _print_model(status.model_dump(mode="json"), args.json)
    return 0 if status.ready else 1


def _reload(args: argparse.Namespace) -> int:
    with client_from_args(args) as client:
        info = client.reload_model(admin_key=args.admin_token)
    # --token opened the admin route only when no --admin-token was given
    remember_connection(args, token_checked=args.admin_token is None)
    if not args.json:
        print("reloaded", file=sys.stderr)
    _print_model(info.model_dump(mode="json"), args.json)
    return 0


#: Flag names where they differ from ``--field-name`` (short forms, established names).
_FLAG_NAMES: dict[str, tuple[str, ...]] = {
    "num_images": ("-n", "--num-images"),
    "output_format": ("--format", "--output-format"),
}


def _image_arg(text: str) -> Path | str:
    """``--image``/``--mask``: a file to read, or an https URL (fetched by this command)."""
    from .._inputs import is_url

    return text if is_url(text) else Path(text).expanduser()


#: Fields whose flag parses its value itself (``add_request_flags`` adds these by hand).
_CUSTOM_FLAGS: dict[str, tuple[tuple[str, ...], dict[str, Any]]] = {
    "image": (
        ("--image",),
        {
            "type": _image_arg,
            "metavar": "FILE|URL",
            "help": "image to image: the starting image (PNG, JPEG or WebP file, or an https URL "
            "this command fetches); the output keeps its size unless --size/--width/--height",
        },
    ),
    "mask": (
        ("--mask",),
        {
            "type": _image_arg,
            "metavar": "FILE|URL",
            "help": "inpainting: a mask of the same size as --image; white repaints, black keeps",
        },
    ),
    "loras": (
        ("--lora",),
        {
            "action": "append",
            "metavar": "SOURCE[:SCALE]",
            "help": "apply a LoRA adapter: owner/repo[/file.safetensors][@revision][:scale] "
            "(Hugging Face Hub) or volume:<path>.safetensors[:scale] (the server's weights "
            "Volume); repeat for several (at most 3)",
        },
    ),
}


def _members(info: Any) -> tuple[Any, ...]:
    annotation = info.annotation
    return typing.get_args(annotation) if typing.get_origin(annotation) else (annotation,)


def add_request_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per request field (all but the prompt), from the request model.

    Type, help and allowed range come from :class:`~jaguar_sdk.GenerateRequest`, so a field
    added there is a flag here; every flag defaults to "not given" (the server's default).
    ``image``, ``mask`` and ``loras`` parse their values themselves (:data:`_CUSTOM_FLAGS`: a
    file or URL to read, a repeatable ``--lora SOURCE[:SCALE]``).
    """
    from .._request import GenerateRequest, allowed_range

    group = parser.add_argument_group("request fields (default: the server's)")
    for name, info in GenerateRequest.model_fields.items():
        if name == "prompt":
            continue
        if name in _CUSTOM_FLAGS:
            flags, options = _CUSTOM_FLAGS[name]
            group.add_argument(*flags, dest=name, default=None, **options)
            continue
        # int | None arrives as Union[Annotated[int, Strict()], None]: look through both.
        bases = {typing.get_args(a)[0] if typing.get_args(a) else a for a in _members(info)}
        kind: Any = next((t for t in (int, float) if t in bases), str)
        default = info.get_default()
        group.add_argument(
            *_FLAG_NAMES.get(name, ("--" + name.replace("_", "-"),)),
            dest=name,
            type=kind,
            default=None,
            help=f"{info.description} Allowed: {allowed_range(name)}; default {default!r}.",
        )


def request_fields_from(args: argparse.Namespace) -> dict[str, Any]:
    """The request fields given on the command line (those left out are not sent)."""
    from .._request import PARAM_NAMES

    return {
        name: getattr(args, name) for name in PARAM_NAMES if getattr(args, name, None) is not None
    }


def register(subparsers: Any) -> None:
    """Add the ``generate``, ``info``, ``health`` and ``reload`` sub-commands.

    Args:
        subparsers: The root parser's sub-parsers action.
    """
    gen: argparse.ArgumentParser = subparsers.add_parser(
        "generate",
        help="generate images from a prompt",
        description="Generate images and write them to files. Reaches the model by --url, "
        "--local or --modal-app, else by $JAGUAR_BASE_URL / $JAGUAR_MODAL_APP / "
        "$JAGUAR_MODEL, else by the user config file.",
    )
    gen.add_argument(
        "prompt",
        nargs="?",
        default=C.DEFAULT_PROMPT,
        help=f"what to draw (default: {C.DEFAULT_PROMPT!r})",
    )
    gen.add_argument("--size", help="WIDTHxHEIGHT, or N for a square (sets --width and --height)")
    add_request_flags(gen)
    gen.add_argument(
        "-o",
        "--output",
        default=os.curdir,
        help="file (.png/.jpg/.webp) or folder to write (default: current folder)",
    )
    gen.add_argument("--display", action="store_true", help="open the images in a viewer")
    gen.add_argument("--json", action="store_true", help="print the result metadata as JSON")
    gen.add_argument(
        "--progress",
        action="store_true",
        help="run as a job and show a progress bar of the denoising steps on stderr (needs "
        "tqdm: pip install 'jaguar-sdk[progress]')",
    )
    _add_connection_flags(gen)
    gen.set_defaults(handler=_generate)

    for name, handler, text in (
        ("info", _info, "show the served model, device and load timings"),
        ("health", _health, "check liveness and readiness (exit 1 when not ready)"),
        ("reload", _reload, "reload the model on the server (admin token)"),
    ):
        sub: argparse.ArgumentParser = subparsers.add_parser(name, help=text, description=text)
        sub.add_argument("--json", action="store_true", help="print JSON")
        _add_connection_flags(sub, admin=name == "reload")
        sub.set_defaults(handler=handler)
