"""Client configuration: where to find a model and how to talk to it.

Every setting is resolved in the same order: constructor argument, then environment variable,
then the user config file, then the default. The config file is JSON at ``$JAGUAR_CONFIG``, else
``$XDG_CONFIG_HOME/jaguar/config.json``, else ``~/.config/jaguar/config.json``; its keys are the
constructor's names (``base_url``, ``model``, ``modal_app``, ``modal_class``,
``modal_environment``, ``timeout``, ``connect_timeout``, ``max_retries``), and ``api_keys``.

Tokens are kept per server: ``api_keys`` maps an origin (``scheme://host:port``) to its token,
and a token from the file is only ever sent to the origin it was saved for. A token given as an
argument or in ``$JAGUAR_API_KEY`` is the caller's explicit choice and applies to any server.

Exactly one way of reaching a model is chosen: an HTTP server (``base_url``), a Modal deployment
(``modal_app``) or the in-process engine (``model``). The first level (arguments, environment,
file) that names any of them decides; two at the same level are a :class:`ConfigurationError`.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from . import _constants as C
from ._exceptions import PHRASES, ConfigurationError

__all__ = [
    "CONFIG_KEYS",
    "Backend",
    "ResolvedConfig",
    "load_user_config",
    "no_backend_message",
    "origin_of",
    "resolve_config",
    "save_user_config",
    "user_config_path",
]

Backend = Literal["http", "modal", "local", "transport"]

#: Settings :func:`save_user_config` takes (``api_key`` is stored in ``api_keys``, per origin).
CONFIG_KEYS: tuple[str, ...] = (
    "base_url",
    "api_key",
    "model",
    "modal_app",
    "modal_class",
    "modal_environment",
    "timeout",
    "connect_timeout",
    "max_retries",
)

_ENV_BY_KEY: dict[str, str] = {
    "base_url": C.ENV_BASE_URL,
    "api_key": C.ENV_API_KEY,
    "model": C.ENV_MODEL,
    "modal_app": C.ENV_MODAL_APP,
    "modal_class": C.ENV_MODAL_CLASS,
    "modal_environment": C.ENV_MODAL_ENVIRONMENT,
    "timeout": C.ENV_TIMEOUT,
    "max_retries": C.ENV_MAX_RETRIES,
}

# The setting that selects each backend, in the order they are listed in messages.
_BACKEND_KEYS: tuple[tuple[str, Backend], ...] = (
    ("base_url", "http"),
    ("modal_app", "modal"),
    ("model", "local"),
)


def user_config_path() -> Path:
    """Where the user config file lives (it may not exist).

    Returns:
        ``$JAGUAR_CONFIG``, else ``$XDG_CONFIG_HOME/jaguar/config.json``, else
        ``~/.config/jaguar/config.json``.
    """
    explicit = os.environ.get(C.ENV_CONFIG)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "jaguar" / "config.json"


#: The file's map of origin -> token.
API_KEYS = "api_keys"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """The origin of an HTTP URL, ``scheme://host:port``, the unit tokens are stored by.

    Args:
        url: An ``http://`` or ``https://`` URL (a path is ignored).

    Returns:
        The origin, lower case, with the default port made explicit.

    Raises:
        ConfigurationError: Not an http(s) URL with a host and a valid port.

    Example:
        >>> origin_of("HTTP://Example.com/v1/"), origin_of("https://[::1]:8443")
        ('http://example.com:80', 'https://[::1]:8443')
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host or port == -1:
        raise ConfigurationError(
            f"base_url must be an http:// or https:// URL with a host (got {url!r})."
        )
    shown = f"[{host}]" if ":" in host else host
    return f"{scheme}://{shown}:{port or _DEFAULT_PORTS[scheme]}"


def _saved_api_key(file_values: Mapping[str, Any], base_url: str) -> str | None:
    """The file's token for ``base_url``'s origin: from ``api_keys``, or a ``api_key`` written
    by an older version, which belongs to the file's own ``base_url``."""
    origin = origin_of(base_url)
    keys = file_values.get(API_KEYS)
    if isinstance(keys, dict) and keys.get(origin):
        return str(keys[origin])
    legacy, saved_url = file_values.get("api_key"), file_values.get("base_url")
    if legacy and isinstance(saved_url, str):
        with contextlib.suppress(ConfigurationError):
            if origin_of(saved_url) == origin:
                return str(legacy)
    return None


def load_user_config(path: Path | None = None) -> dict[str, Any]:
    """Read the user config file.

    Args:
        path: The file; :func:`user_config_path` when omitted.

    Returns:
        Its settings (empty when the file does not exist).

    Raises:
        ConfigurationError: The file exists but is not a JSON object.
    """
    target = path or user_config_path()
    try:
        text = target.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigurationError(f"Cannot read the jaguar config file {target}: {exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"The jaguar config file {target} is not valid JSON ({exc.msg} at line {exc.lineno})."
            " Fix it or delete it."
        ) from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"The jaguar config file {target} must hold a JSON object.")
    return data


def save_user_config(path: Path | None = None, **values: Any) -> Path:
    """Merge settings into the user config file, atomically and readable by the owner only.

    The file is written to a temporary file in the same folder with mode 0600 and renamed
    over the old one, so a crash never leaves half a file and the token is never world-readable.
    A value of ``None`` removes the key. ``api_key`` is stored for the origin of ``base_url``
    (the one given, else the one saved), in ``api_keys``: tokens saved for other servers stay,
    and none is ever sent to a server it was not saved for.

    Args:
        path: The file; :func:`user_config_path` when omitted.
        **values: Settings to store, named as in :data:`CONFIG_KEYS`.

    Returns:
        The path written.

    Raises:
        ConfigurationError: An unknown key, an ``api_key`` with no ``base_url`` to pair it
            with, or the file cannot be written.

    Example:
        >>> save_user_config(base_url="http://127.0.0.1:8000", api_key="s3cret")
        ... # doctest: +SKIP
        PosixPath('/home/me/.config/jaguar/config.json')
    """
    unknown = sorted(set(values) - set(CONFIG_KEYS))
    if unknown:
        raise ConfigurationError(
            f"Unknown config keys {unknown}; allowed keys: {', '.join(CONFIG_KEYS)}."
        )
    target = path or user_config_path()
    data = load_user_config(target)
    keys = dict(data.get(API_KEYS) or {})
    legacy = data.pop("api_key", None)  # an older version's token: it belongs to the saved URL
    if legacy and isinstance(data.get("base_url"), str):
        keys.setdefault(origin_of(data["base_url"]), legacy)
    if "api_key" in values:
        url = values.get("base_url") or data.get("base_url")
        if not url:
            raise ConfigurationError("An api_key is saved for a server: give its base_url too.")
        token = values.pop("api_key")
        if token is None:
            keys.pop(origin_of(url), None)
        else:
            keys[origin_of(url)] = token
    for key, value in values.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    if keys:
        data[API_KEYS] = keys
    else:
        data.pop(API_KEYS, None)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".config-", suffix=".tmp", dir=target.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2, sort_keys=True)
                handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigurationError(f"Cannot write the jaguar config file {target}: {exc}") from exc
    return target


def no_backend_message(config_path: Path) -> str:
    """The message shown when no way of reaching a model is configured."""
    return (
        "No Jaguar model is configured. Choose one of three ways:\n"
        f"  1. An HTTP server: {PHRASES['http']}, or set {C.ENV_BASE_URL} (and "
        f"{C.ENV_API_KEY}). `jaguar generate --url URL` saves the URL (and its token) once a "
        "call to it succeeds, so later runs need no flag.\n"
        f"  2. A Modal deployment: {PHRASES['modal']} (needs "
        f"`pip install 'jaguar-sdk[modal]'`), or set {C.ENV_MODAL_APP}={C.DEFAULT_MODAL_APP}.\n"
        f"  3. In-process: {PHRASES['local']} (the offline test model; needs "
        f"`pip install 'jaguar-sdk[engine]'`), or set {C.ENV_MODEL}=tiny.\n"
        f"Settings are also read from {config_path} (JSON with keys such as base_url, "
        "modal_app, timeout)."
    )


@dataclass(frozen=True)
class ResolvedConfig:
    """The settings a client runs with, after resolution.

    Attributes:
        backend: ``"http"``, ``"modal"``, ``"local"`` or ``"transport"`` (an injected one).
        base_url: The HTTP server root, for ``"http"``.
        api_key: The bearer token, if any.
        model: ``"tiny"`` or a model folder, for ``"local"``.
        modal_app: The Modal app name, for ``"modal"``.
        modal_class: The Modal class name.
        modal_environment: The Modal environment, if not the default.
        timeout: Read timeout of one attempt in seconds (``None``: wait forever).
        connect_timeout: Seconds to establish a connection.
        max_retries: Retries after the first attempt.
        chosen_by: Where the backend choice came from (``"argument"``, ``"environment"``,
            the config file's path).
    """

    backend: Backend
    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    modal_app: str | None = None
    modal_class: str = C.DEFAULT_MODAL_CLASS
    modal_environment: str | None = None
    timeout: float | None = C.DEFAULT_READ_TIMEOUT_S
    connect_timeout: float = C.DEFAULT_CONNECT_TIMEOUT_S
    max_retries: int = C.DEFAULT_MAX_RETRIES
    chosen_by: str = "argument"

    def __repr__(self) -> str:  # never show the api key
        return (
            f"ResolvedConfig(backend={self.backend!r}, base_url={self.base_url!r}, "
            f"model={self.model!r}, modal_app={self.modal_app!r}, timeout={self.timeout!r}, "
            f"max_retries={self.max_retries!r}, api_key={'set' if self.api_key else None})"
        )


def _as_timeout(value: Any, source: str) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"{source}: must be a number of seconds (got {value!r})."
        ) from None
    if math.isnan(number) or number <= 0:
        raise ConfigurationError(f"{source}: must be positive (got {value!r}).")
    return None if math.isinf(number) else number


def _as_retries(value: Any, source: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{source}: must be a whole number (got {value!r}).") from None
    if isinstance(value, bool) or number < 0 or (isinstance(value, float) and value != number):
        raise ConfigurationError(f"{source}: must be 0 or more (got {value!r}).")
    return number


def resolve_config(
    arguments: Mapping[str, Any],
    *,
    env: Mapping[str, str] | None = None,
    config_path: str | os.PathLike[str] | None = None,
    has_transport: bool = False,
) -> ResolvedConfig:
    """Resolve the client settings: arguments, then environment, then config file, then default.

    Args:
        arguments: The constructor arguments (``None`` means "not given").
        env: The environment; ``os.environ`` when omitted.
        config_path: The config file; :func:`user_config_path` when omitted.
        has_transport: Whether a ready transport was passed (it is the backend then).

    Returns:
        The resolved settings.

    Raises:
        ConfigurationError: Nothing configured, two backends at the same level, or a malformed
            value.

    Example:
        >>> resolve_config({"base_url": "http://127.0.0.1:8000"}, env={}).backend
        'http'
    """
    environ = os.environ if env is None else env
    path = Path(config_path).expanduser() if config_path is not None else user_config_path()
    file_values = load_user_config(path)
    env_values = {key: environ[name] for key, name in _ENV_BY_KEY.items() if environ.get(name)}
    args = {key: value for key, value in arguments.items() if value is not None}

    levels: list[tuple[str, Mapping[str, Any]]] = [
        ("argument", args),
        ("environment", env_values),
        (str(path), file_values),
    ]

    backend: Backend | None = None
    chosen_by = "argument"
    choice: dict[str, Any] = {}
    for level_name, values in levels:
        named = [(key, kind) for key, kind in _BACKEND_KEYS if values.get(key)]
        if level_name == "argument" and has_transport:
            named.insert(0, ("transport", "transport"))
        if not named:
            continue
        if len(named) > 1:
            shown = " and ".join(
                _ENV_BY_KEY.get(key, key) if level_name == "environment" else key
                for key, _ in named
            )
            raise ConfigurationError(
                f"Two ways of reaching the model are configured at once ({shown}, from "
                f"{level_name}). Choose one: an HTTP base_url, a Modal app, or a local model."
            )
        key, backend = named[0]
        chosen_by = level_name
        if key != "transport":
            choice[key] = str(values[key])
        break
    if backend is None:
        raise ConfigurationError(no_backend_message(path))

    def pick(key: str) -> tuple[Any, str]:
        for level_name, values in levels:
            if values.get(key) is not None and values.get(key) != "":
                if level_name == "environment":
                    return values[key], f"${_ENV_BY_KEY[key]}"
                if level_name == "argument":
                    return values[key], f"argument {key}"
                return values[key], f"{level_name} ({key})"
        return None, ""

    # A token from an argument or $JAGUAR_API_KEY goes wherever the caller points it; one from
    # the file only to the origin it was saved for.
    api_key = args.get("api_key") or env_values.get("api_key")
    modal_class, _ = pick("modal_class")
    modal_environment, _ = pick("modal_environment")
    raw_timeout, timeout_source = pick("timeout")
    raw_connect, connect_source = pick("connect_timeout")
    raw_retries, retries_source = pick("max_retries")

    base_url = choice.get("base_url")
    if base_url is not None:
        base_url = base_url.strip().rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"base_url must start with http:// or https:// (got {base_url!r})."
            )

    if not api_key and base_url is not None:
        api_key = _saved_api_key(file_values, base_url)

    connect = (
        _as_timeout(raw_connect, connect_source)
        if raw_connect is not None
        else C.DEFAULT_CONNECT_TIMEOUT_S
    )
    return ResolvedConfig(
        backend=backend,
        base_url=base_url,
        api_key=str(api_key) if api_key else None,
        model=choice.get("model"),
        modal_app=choice.get("modal_app"),
        modal_class=str(modal_class) if modal_class else C.DEFAULT_MODAL_CLASS,
        modal_environment=str(modal_environment) if modal_environment else None,
        timeout=(
            _as_timeout(raw_timeout, timeout_source)
            if raw_timeout is not None
            else C.DEFAULT_READ_TIMEOUT_S
        ),
        connect_timeout=connect if connect is not None else C.DEFAULT_CONNECT_TIMEOUT_S,
        max_retries=(
            _as_retries(raw_retries, retries_source)
            if raw_retries is not None
            else C.DEFAULT_MAX_RETRIES
        ),
        chosen_by=chosen_by,
    )
