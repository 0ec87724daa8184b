"""Deploy-time settings of the Modal app, read from ``JAGUAR_*`` environment variables.

Set them in the shell that runs ``modal deploy deploy/app.py``; every one has a default. The app
bakes the values into the image environment (:meth:`DeploySettings.to_env`), so the container
sees the same settings as the machine that deployed it.

Example:
    >>> DeploySettings.from_env({"JAGUAR_GPU": "H100:2", "JAGUAR_MIN_CONTAINERS": "1"}).gpu
    'H100:2'
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import ClassVar, Literal

__all__ = ["KNOWN_GPUS", "WEIGHTS_LOCK_WAIT_S", "DeploySettings", "DeploySettingsError"]

#: GPU types Modal documents (``H100!`` pins an H100; plain ``H100`` may be upgraded to an H200).
KNOWN_GPUS: tuple[str, ...] = (
    "T4",
    "L4",
    "A10",
    "A10G",
    "L40S",
    "A100",
    "A100-40GB",
    "A100-80GB",
    "RTX-PRO-6000",
    "H100",
    "H100!",
    "H200",
    "B200",
    "B200+",
    "B300",
)

SnapshotMode = Literal["cpu", "gpu", "off"]
WebAuth = Literal["token", "proxy"]
OnMissingWeights = Literal["fail", "download"]

#: Seconds the weights function waits for another container's download of the same revision
#: (the store's lock) before downloading too; shorter than every startup timeout it runs under.
WEIGHTS_LOCK_WAIT_S = 900

#: Modal GPU types without fp8 tensor cores (compute capability below 8.9).
_NO_FP8_GPUS = frozenset({"T4", "A10", "A10G", "A100", "A100-40GB", "A100-80GB"})
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: App names leave room for the "-state" suffix of the app's state Dict (Modal names: <= 64).
_APP_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,57}$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class DeploySettingsError(ValueError):
    """A ``JAGUAR_*`` deploy variable has a bad value; the message names it and what is allowed."""


@dataclass(frozen=True)
class DeploySettings:
    """Everything that shapes the deployment.

    Attributes:
        app_name: Modal app name (``JAGUAR_APP_NAME``, default ``"shuttle-jaguar"``).
        gpu: GPU type, optionally ``:N`` for N GPUs (``JAGUAR_GPU``, default ``"H100"``).
        timeout_s: Seconds one call may run, 1..86400 (``JAGUAR_TIMEOUT_S``, default 600).
        startup_timeout_s: Seconds a GPU container may take to start (enter hooks: load,
            snapshot, move to the GPU, compile, warm-up), 60..86400
            (``JAGUAR_STARTUP_TIMEOUT_S``, default 1200). Modal's own default is ``timeout_s``.
        cpu: CPU cores reserved per GPU container, 1..64 (``JAGUAR_CPU``, default 8: tokenising,
            image encoding and the host side of the load; Modal's default is 0.125).
        scaledown_window_s: Idle seconds before a container stops, 2..3600
            (``JAGUAR_SCALEDOWN_WINDOW_S``, default 300).
        min_containers: Containers kept warm when idle (``JAGUAR_MIN_CONTAINERS``, default 0).
        buffer_containers: Extra idle containers while busy (``JAGUAR_BUFFER_CONTAINERS``, 0).
        max_containers: Upper bound on containers (``JAGUAR_MAX_CONTAINERS``, default 4).
        model_id: Hub repo (``JAGUAR_MODEL_ID``, default ``"shuttleai/shuttle-jaguar"``).
        model_revision: Commit, branch or tag (``JAGUAR_MODEL_REVISION``, default ``"main"``).
        volume_name: Weights Volume (``JAGUAR_VOLUME_NAME``, default ``"jaguar-model-weights"``).
        snapshot: ``"cpu"`` (memory snapshot of the CPU-loaded model), ``"gpu"`` (alpha GPU
            snapshot) or ``"off"`` (``JAGUAR_SNAPSHOT``, default ``"cpu"``).
        compile: ``torch.compile`` after moving to the GPU (``JAGUAR_COMPILE``, default false);
            its caches live on the Volume so later containers reuse them.
        fp8: Quantise the transformer to fp8 with torchao (``JAGUAR_FP8``, default false;
            needs an fp8 GPU: H100/H200/L4/L40S, compute capability >= 8.9).
        web_auth: ``"token"`` (bearer ``JAGUAR_SERVER_TOKEN`` from a Modal secret) or
            ``"proxy"`` (Modal proxy auth, ``Modal-Key``/``Modal-Secret``) (``JAGUAR_WEB_AUTH``).
        hf_secret: Modal secret holding ``HF_TOKEN``, for the weights function (and GPU
            containers that download); ``""`` for none, the default: the repo is public
            (``JAGUAR_HF_SECRET``).
        token_secret: Modal secret holding ``JAGUAR_SERVER_TOKEN`` (``JAGUAR_TOKEN_SECRET``).
        memory_mb: Host RAM requested, MiB (``JAGUAR_MEMORY_MB``, default 65536: the ~34 GB
            of weights sit in host RAM before the snapshot, plus one shard read as bytes while
            it loads; see docs/deploy.md).
        on_missing_weights: What a GPU container does when the weights are not on the Volume:
            ``"fail"`` at once, naming the ``modal run`` command (default), or ``"download"``
            them through the CPU weights function (``JAGUAR_ON_MISSING_WEIGHTS``).
        weights_timeout_s: Seconds the CPU weights function may run, 3600..86400
            (``JAGUAR_WEIGHTS_TIMEOUT_S``, default 3600).
        web_max_inputs: Requests one CPU web container serves at once, 10..1000
            (``JAGUAR_WEB_MAX_INPUTS``, default 100).
    """

    app_name: str = "shuttle-jaguar"
    gpu: str = "H100"
    timeout_s: int = 600
    scaledown_window_s: int = 300
    min_containers: int = 0
    buffer_containers: int = 0
    max_containers: int = 4
    model_id: str = "shuttleai/shuttle-jaguar"
    model_revision: str = "main"
    volume_name: str = "jaguar-model-weights"
    snapshot: SnapshotMode = "cpu"
    compile: bool = False
    fp8: bool = False
    web_auth: WebAuth = "token"
    hf_secret: str = ""
    token_secret: str = "jaguar-api-token"
    memory_mb: int = 65536
    startup_timeout_s: int = 1200
    cpu: float = 8.0
    on_missing_weights: OnMissingWeights = "fail"
    weights_timeout_s: int = 3600
    web_max_inputs: int = 100

    #: Field name -> environment variable.
    ENV_NAMES: ClassVar[dict[str, str]] = {
        "app_name": "JAGUAR_APP_NAME",
        "gpu": "JAGUAR_GPU",
        "timeout_s": "JAGUAR_TIMEOUT_S",
        "scaledown_window_s": "JAGUAR_SCALEDOWN_WINDOW_S",
        "min_containers": "JAGUAR_MIN_CONTAINERS",
        "buffer_containers": "JAGUAR_BUFFER_CONTAINERS",
        "max_containers": "JAGUAR_MAX_CONTAINERS",
        "model_id": "JAGUAR_MODEL_ID",
        "model_revision": "JAGUAR_MODEL_REVISION",
        "volume_name": "JAGUAR_VOLUME_NAME",
        "snapshot": "JAGUAR_SNAPSHOT",
        "compile": "JAGUAR_COMPILE",
        "fp8": "JAGUAR_FP8",
        "web_auth": "JAGUAR_WEB_AUTH",
        "hf_secret": "JAGUAR_HF_SECRET",
        "token_secret": "JAGUAR_TOKEN_SECRET",
        "memory_mb": "JAGUAR_MEMORY_MB",
        "startup_timeout_s": "JAGUAR_STARTUP_TIMEOUT_S",
        "cpu": "JAGUAR_CPU",
        "on_missing_weights": "JAGUAR_ON_MISSING_WEIGHTS",
        "weights_timeout_s": "JAGUAR_WEIGHTS_TIMEOUT_S",
        "web_max_inputs": "JAGUAR_WEB_MAX_INPUTS",
    }

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DeploySettings:
        """Read the settings from ``JAGUAR_*`` variables (defaults for unset ones).

        Args:
            environ: Where to read; ``os.environ`` when omitted.

        Returns:
            Validated settings.

        Raises:
            DeploySettingsError: Naming the variable, the bad value and the allowed range.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            var = cls.ENV_NAMES[f.name]
            raw = env.get(var)
            if raw is None:
                continue
            raw = raw.strip()
            default = f.default
            if isinstance(default, bool):
                values[f.name] = _parse_bool(var, raw)
            elif isinstance(default, int):
                values[f.name] = _parse_int(var, raw)
            elif isinstance(default, float):
                values[f.name] = _parse_float(var, raw)
            elif f.name in ("gpu",):
                values[f.name] = raw.upper()
            elif f.name in ("snapshot", "web_auth", "on_missing_weights"):
                values[f.name] = raw.lower()
            else:
                values[f.name] = raw
        return cls(**values)  # type: ignore[arg-type]

    def to_env(self) -> dict[str, str]:
        """The ``JAGUAR_*`` variables that reproduce these settings (baked into the image)."""
        out: dict[str, str] = {}
        for name, value in asdict(self).items():
            text = ("true" if value else "false") if isinstance(value, bool) else str(value)
            out[self.ENV_NAMES[name]] = text
        return out

    def validate(self) -> None:
        """Check every value.

        Raises:
            DeploySettingsError: Naming the variable, the bad value and the allowed range.
        """
        n = self.ENV_NAMES
        if not _APP_RE.match(self.app_name):
            _fail(n["app_name"], self.app_name, "1-58 letters, digits, '.', '_', '-'")
        if not _NAME_RE.match(self.volume_name):
            _fail(n["volume_name"], self.volume_name, "1-64 letters, digits, '.', '_', '-'")
        _check_gpu(n["gpu"], self.gpu)
        _check_range(n["timeout_s"], self.timeout_s, 1, 86400)
        _check_range(n["scaledown_window_s"], self.scaledown_window_s, 2, 3600)
        _check_range(n["min_containers"], self.min_containers, 0, 1000)
        _check_range(n["buffer_containers"], self.buffer_containers, 0, 1000)
        _check_range(n["max_containers"], self.max_containers, 1, 1000)
        if self.min_containers > self.max_containers:
            raise DeploySettingsError(
                f"JAGUAR_MIN_CONTAINERS={self.min_containers} is greater than "
                f"JAGUAR_MAX_CONTAINERS={self.max_containers}; allowed: min <= max"
            )
        _check_range(n["memory_mb"], self.memory_mb, 1024, 1024 * 1024)
        _check_range(n["startup_timeout_s"], self.startup_timeout_s, 60, 86400)
        _check_range(n["weights_timeout_s"], self.weights_timeout_s, 3600, 86400)
        _check_range(n["web_max_inputs"], self.web_max_inputs, 10, 1000)
        if isinstance(self.cpu, bool) or not isinstance(self.cpu, int | float):
            _fail(n["cpu"], self.cpu, "a number of cores from 1 to 64")
        if not 1.0 <= float(self.cpu) <= 64.0:
            _fail(n["cpu"], self.cpu, "a number of cores from 1 to 64")
        if self.on_missing_weights not in ("fail", "download"):
            _fail(n["on_missing_weights"], self.on_missing_weights, "one of 'fail', 'download'")
        if (
            self.on_missing_weights == "download"
            and self.startup_timeout_s < self.weights_timeout_s
        ):
            raise DeploySettingsError(
                f"JAGUAR_ON_MISSING_WEIGHTS=download makes a GPU container wait for the weights "
                f"function during its start, so JAGUAR_STARTUP_TIMEOUT_S={self.startup_timeout_s} "
                f"must be at least JAGUAR_WEIGHTS_TIMEOUT_S={self.weights_timeout_s}; allowed: "
                "startup >= weights timeout (or keep 'fail' and run the weights step first)"
            )
        if self.snapshot not in ("cpu", "gpu", "off"):
            _fail(n["snapshot"], self.snapshot, "one of 'cpu', 'gpu', 'off'")
        if self.web_auth not in ("token", "proxy"):
            _fail(n["web_auth"], self.web_auth, "one of 'token', 'proxy'")
        if not self.model_id or self.model_id.count("/") != 1 or " " in self.model_id:
            _fail(n["model_id"], self.model_id, "a Hub repo id 'org/name'")
        if not self.model_revision or " " in self.model_revision:
            _fail(n["model_revision"], self.model_revision, "a commit, branch or tag")
        if self.hf_secret and not _NAME_RE.match(self.hf_secret):
            _fail(n["hf_secret"], self.hf_secret, "a Modal secret name, or '' for none")
        if self.web_auth == "token" and not _NAME_RE.match(self.token_secret):
            _fail(n["token_secret"], self.token_secret, "a Modal secret name")
        if self.fp8 and self.gpu_type.rstrip("!") in _NO_FP8_GPUS:
            _fail(n["fp8"], "true", f"false on {self.gpu} (no fp8 tensor cores)")
        if self.snapshot == "gpu" and self.gpu_count > 1:
            _fail(n["snapshot"], self.snapshot, "'cpu' or 'off' with several GPUs")

    @property
    def gpu_type(self) -> str:
        """The GPU type without its count."""
        return self.gpu.split(":", 1)[0]

    @property
    def gpu_count(self) -> int:
        """How many GPUs per container."""
        return int(self.gpu.split(":", 1)[1]) if ":" in self.gpu else 1


def _fail(var: str, value: object, allowed: str) -> None:
    raise DeploySettingsError(f"{var}={value!r} is not valid; allowed: {allowed}")


def _parse_int(var: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise DeploySettingsError(f"{var}={raw!r} is not an integer") from None


def _parse_float(var: str, raw: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise DeploySettingsError(f"{var}={raw!r} is not a number") from None


def _parse_bool(var: str, raw: str) -> bool:
    low = raw.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise DeploySettingsError(f"{var}={raw!r} is not valid; allowed: true/false, 1/0, yes/no")


def _check_range(var: str, value: int, lo: int, hi: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        _fail(var, value, f"an integer from {lo} to {hi}")


def _check_gpu(var: str, value: str) -> None:
    kind, _, count = value.partition(":")
    allowed = f"one of {', '.join(KNOWN_GPUS)}, optionally ':N' with N from 1 to 8"
    if kind not in KNOWN_GPUS:
        _fail(var, value, allowed)
    if count and (not count.isdigit() or not 1 <= int(count) <= 8):
        _fail(var, value, allowed)
