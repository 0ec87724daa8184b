"""The Modal app definition, read back from modal 1.6.4's own objects (no token, no network).

``deploy/app.py`` decorates its functions and class at import, from ``JAGUAR_*`` variables, like
Modal's own examples; other settings are checked by importing it in a subprocess with other env.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import modal
import pytest

import deploy.app as deploy_app
from deploy.settings import WEIGHTS_LOCK_WAIT_S, DeploySettings, DeploySettingsError
from jaguar_sdk._constants import DEFAULT_MODAL_CLASS

ROOT = Path(__file__).resolve().parents[2]


def definition(fn: Any) -> dict[str, Any]:
    """What Modal will send to its server for a function (or a class's service function): the
    spec, and the arguments captured by its loader (where modal 1.6.4 keeps the autoscaler,
    snapshot, concurrency and startup settings until deploy)."""
    from modal._utils.async_utils import synchronizer

    raw = synchronizer._translate_in(fn)
    load = raw._load
    captured = dict(
        zip(
            load.__code__.co_freevars,
            (c.cell_contents for c in load.__closure__ or ()),
            strict=True,
        )
    )
    webhook = captured["webhook_config"]
    return {
        "gpu": raw._spec.gpus,
        "cpu": raw._spec.cpu,
        "memory": raw._spec.memory,
        "volumes": sorted(raw._spec.volumes),
        "secrets": len(raw._spec.secrets),
        "timeout": captured["timeout"],
        "startup_timeout": captured["startup_timeout"],
        "scaledown_window": captured["scaledown_window"],
        "min_containers": captured["min_containers"],
        "max_containers": captured["max_containers"],
        "buffer_containers": captured["buffer_containers"],
        "enable_memory_snapshot": captured["enable_memory_snapshot"],
        "experimental_options": captured["experimental_options"] or {},
        "max_concurrent_inputs": captured["max_concurrent_inputs"],
        "web": bool(webhook and webhook.type),
        "requires_proxy_auth": bool(webhook and webhook.requires_proxy_auth),
    }


def app_definition(module: Any) -> dict[str, Any]:
    """The three parts of the app, plus the GPU class's methods."""
    from modal._utils.async_utils import synchronizer

    raw_cls = synchronizer._translate_in(module.JaguarModel)
    return {
        "app": module.app.name,
        "weights": definition(module.download_weights),
        "gpu": definition(module.JaguarModel._get_class_service_function()),
        "web": definition(module.web),
        "methods": sorted(raw_cls._method_partials),
        "torch": "torch" in sys.modules,
    }


def _import_in_subprocess(env: dict[str, str]) -> dict[str, Any]:
    code = (
        "import json\n"
        "import deploy.app as d\n"
        "from tests.deploy.test_app_definition import app_definition\n"
        "print(json.dumps(app_definition(d), default=str))\n"
    )
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("JAGUAR_", "MODAL_"))}
    full_env.update(env)
    full_env["MODAL_CONFIG_PATH"] = str(ROOT / "no-such-modal.toml")
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_default_app() -> None:
    d = app_definition(deploy_app)
    assert d["app"] == "shuttle-jaguar"

    weights = d["weights"]  # CPU, long timeout, several cores, the Volume
    assert weights["gpu"] is None and weights["cpu"] >= 4
    assert weights["timeout"] >= 3600
    assert weights["volumes"] == ["/weights"]
    assert weights["secrets"] == 0  # the repo is public: no HF secret by default

    gpu = d["gpu"]
    assert gpu["gpu"] == "H100"
    assert gpu["cpu"] == 8.0  # Modal's default reservation is 0.125 cores
    assert gpu["memory"] == 65536
    assert gpu["volumes"] == ["/weights"]
    assert gpu["timeout"] == 600
    assert gpu["startup_timeout"] == 1200  # explicit (Modal's default is `timeout`)
    assert gpu["startup_timeout"] > WEIGHTS_LOCK_WAIT_S
    assert gpu["secrets"] == 0  # no HF secret by default: the repo is public
    assert (gpu["scaledown_window"], gpu["min_containers"], gpu["max_containers"]) == (300, 0, 4)
    assert gpu["buffer_containers"] == 0
    assert gpu["enable_memory_snapshot"] is True and gpu["experimental_options"] == {}
    assert not gpu["max_concurrent_inputs"]  # one input per GPU container (see docs/deploy.md)
    assert d["methods"] == ["generate", "health", "info", "reload"]  # no web endpoint here

    web = d["web"]  # CPU, concurrent, the HTTP API
    assert web["web"] is True and web["gpu"] is None and web["cpu"] == 1.0
    assert web["max_concurrent_inputs"] == 100
    assert web["volumes"] == [] and web["secrets"] == 1  # the token secret only
    assert web["requires_proxy_auth"] is False
    assert web["timeout"] >= gpu["timeout"] + gpu["startup_timeout"]


def test_the_module_reads_like_modals_examples() -> None:
    assert not hasattr(deploy_app, "build_app")  # no factory rebinding the class name
    assert isinstance(deploy_app.JaguarModel, modal.Cls)
    assert isinstance(deploy_app.web, modal.Function)
    assert isinstance(deploy_app.download_weights, modal.Function)
    assert deploy_app.CLASS_NAME == DEFAULT_MODAL_CLASS == "JaguarModel"


def test_settings_are_read_back_from_modal() -> None:
    d = _import_in_subprocess(
        {
            "JAGUAR_APP_NAME": "jaguar-test",
            "JAGUAR_GPU": "a100-80gb:2",
            "JAGUAR_TIMEOUT_S": "1200",
            "JAGUAR_STARTUP_TIMEOUT_S": "1800",
            "JAGUAR_CPU": "12",
            "JAGUAR_SCALEDOWN_WINDOW_S": "60",
            "JAGUAR_MIN_CONTAINERS": "1",
            "JAGUAR_BUFFER_CONTAINERS": "1",
            "JAGUAR_MAX_CONTAINERS": "8",
            "JAGUAR_MEMORY_MB": "98304",
            "JAGUAR_WEB_MAX_INPUTS": "250",
            "JAGUAR_WEIGHTS_TIMEOUT_S": "7200",
        }
    )
    assert d["app"] == "jaguar-test"
    gpu = d["gpu"]
    assert (gpu["gpu"], gpu["cpu"], gpu["memory"]) == ("A100-80GB:2", 12.0, 98304)
    assert (gpu["timeout"], gpu["startup_timeout"], gpu["scaledown_window"]) == (1200, 1800, 60)
    assert (gpu["min_containers"], gpu["buffer_containers"], gpu["max_containers"]) == (1, 1, 8)
    assert d["web"]["max_concurrent_inputs"] == 250
    assert d["weights"]["timeout"] == 7200
    assert d["torch"] is False  # importing the app never imports torch


def test_snapshot_off_and_proxy_auth() -> None:
    d = _import_in_subprocess({"JAGUAR_SNAPSHOT": "off", "JAGUAR_WEB_AUTH": "proxy"})
    assert d["gpu"]["enable_memory_snapshot"] is False
    assert d["web"]["requires_proxy_auth"] is True
    assert d["web"]["secrets"] == 0  # proxy auth: no token secret


def test_gpu_snapshot_mode_sets_the_experimental_option() -> None:
    d = _import_in_subprocess({"JAGUAR_SNAPSHOT": "gpu"})
    assert d["gpu"]["enable_memory_snapshot"] is True
    assert d["gpu"]["experimental_options"] == {"enable_gpu_snapshot": "True"}


def test_download_mode_and_an_hf_secret() -> None:
    d = _import_in_subprocess(
        {
            "JAGUAR_ON_MISSING_WEIGHTS": "download",
            "JAGUAR_STARTUP_TIMEOUT_S": "3600",
            "JAGUAR_HF_SECRET": "huggingface-secret",
        }
    )
    assert d["weights"]["secrets"] == 1
    assert d["gpu"]["secrets"] == 1  # info's update check asks the Hub too
    assert d["gpu"]["startup_timeout"] >= d["weights"]["timeout"]


def test_bad_settings_fail_at_import_with_a_clear_message() -> None:
    with pytest.raises(subprocess.CalledProcessError) as info:
        _import_in_subprocess({"JAGUAR_GPU": "H1000"})
    assert "DeploySettingsError: JAGUAR_GPU='H1000' is not valid" in info.value.stderr


def test_settings_are_baked_into_the_image_env() -> None:
    env = DeploySettings.from_env({"JAGUAR_GPU": "L40S", "JAGUAR_COMPILE": "yes"}).to_env()
    assert env["JAGUAR_GPU"] == "L40S"
    assert env["JAGUAR_COMPILE"] == "true"
    assert env["JAGUAR_CPU"] == "8.0"
    assert DeploySettings.from_env(env) == DeploySettings.from_env(
        {"JAGUAR_GPU": "L40S", "JAGUAR_COMPILE": "1"}
    )


@pytest.mark.parametrize(
    ("env", "var", "hint"),
    [
        ({"JAGUAR_GPU": "H1000"}, "JAGUAR_GPU", "H100"),
        ({"JAGUAR_GPU": "H100:0"}, "JAGUAR_GPU", "':N'"),
        ({"JAGUAR_SCALEDOWN_WINDOW_S": "1"}, "JAGUAR_SCALEDOWN_WINDOW_S", "from 2 to 3600"),
        ({"JAGUAR_SCALEDOWN_WINDOW_S": "3601"}, "JAGUAR_SCALEDOWN_WINDOW_S", "from 2 to 3600"),
        ({"JAGUAR_TIMEOUT_S": "0"}, "JAGUAR_TIMEOUT_S", "from 1 to 86400"),
        ({"JAGUAR_TIMEOUT_S": "ten"}, "JAGUAR_TIMEOUT_S", "not an integer"),
        ({"JAGUAR_STARTUP_TIMEOUT_S": "30"}, "JAGUAR_STARTUP_TIMEOUT_S", "from 60 to 86400"),
        ({"JAGUAR_WEIGHTS_TIMEOUT_S": "600"}, "JAGUAR_WEIGHTS_TIMEOUT_S", "from 3600"),
        ({"JAGUAR_CPU": "0.5"}, "JAGUAR_CPU", "from 1 to 64"),
        ({"JAGUAR_CPU": "many"}, "JAGUAR_CPU", "not a number"),
        ({"JAGUAR_WEB_MAX_INPUTS": "1"}, "JAGUAR_WEB_MAX_INPUTS", "from 10 to 1000"),
        ({"JAGUAR_ON_MISSING_WEIGHTS": "hope"}, "JAGUAR_ON_MISSING_WEIGHTS", "'fail', 'download'"),
        (
            {"JAGUAR_ON_MISSING_WEIGHTS": "download"},
            "JAGUAR_STARTUP_TIMEOUT_S",
            "JAGUAR_WEIGHTS_TIMEOUT_S",
        ),
        ({"JAGUAR_SNAPSHOT": "maybe"}, "JAGUAR_SNAPSHOT", "'cpu', 'gpu', 'off'"),
        ({"JAGUAR_WEB_AUTH": "none"}, "JAGUAR_WEB_AUTH", "'token', 'proxy'"),
        ({"JAGUAR_COMPILE": "perhaps"}, "JAGUAR_COMPILE", "true/false"),
        (
            {"JAGUAR_MIN_CONTAINERS": "5", "JAGUAR_MAX_CONTAINERS": "2"},
            "JAGUAR_MIN_CONTAINERS",
            "min <= max",
        ),
        ({"JAGUAR_MAX_CONTAINERS": "0"}, "JAGUAR_MAX_CONTAINERS", "from 1 to 1000"),
        ({"JAGUAR_MODEL_ID": "no-slash"}, "JAGUAR_MODEL_ID", "org/name"),
        ({"JAGUAR_APP_NAME": "bad name"}, "JAGUAR_APP_NAME", "letters"),
        ({"JAGUAR_APP_NAME": "a" * 59}, "JAGUAR_APP_NAME", "1-58"),
        ({"JAGUAR_MEMORY_MB": "10"}, "JAGUAR_MEMORY_MB", "from 1024"),
        ({"JAGUAR_SNAPSHOT": "gpu", "JAGUAR_GPU": "H100:2"}, "JAGUAR_SNAPSHOT", "several GPUs"),
        ({"JAGUAR_FP8": "true", "JAGUAR_GPU": "A100-80GB"}, "JAGUAR_FP8", "no fp8 tensor cores"),
        ({"JAGUAR_FP8": "perhaps"}, "JAGUAR_FP8", "true/false"),
    ],
)
def test_bad_settings_name_the_variable_and_the_range(
    env: dict[str, str], var: str, hint: str
) -> None:
    with pytest.raises(DeploySettingsError) as info:
        DeploySettings.from_env(env)
    message = str(info.value)
    assert var in message
    assert hint in message
    assert isinstance(info.value, ValueError)


def test_gpu_names_are_normalised_and_counts_allowed() -> None:
    s = DeploySettings.from_env({"JAGUAR_GPU": "h100!:2"})
    assert (s.gpu, s.gpu_type, s.gpu_count) == ("H100!:2", "H100!", 2)


def test_update_autoscaler_targets_the_deployed_class_instance(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[str, Any]] = []

    class FakeObj:
        def update_autoscaler(self, **kw: Any) -> str:
            calls.append(("update", kw))
            return "settings"

    def from_name(app: str, name: str, *, environment_name: str | None = None) -> Any:
        calls.append(("lookup", (app, name, environment_name)))
        return lambda: FakeObj()

    monkeypatch.setattr(modal.Cls, "from_name", from_name)
    assert deploy_app.update_autoscaler(min_containers=1, scaledown_window=120) == "settings"
    assert calls == [
        ("lookup", ("shuttle-jaguar", "JaguarModel", None)),
        ("update", {"min_containers": 1, "scaledown_window": 120}),
    ]
    calls.clear()
    assert deploy_app.main(["scale", "--app", "x", "--env", "dev", "--max-containers", "2"]) == 0
    assert calls == [("lookup", ("x", "JaguarModel", "dev")), ("update", {"max_containers": 2})]
    with pytest.raises(ValueError, match="nothing to change"):
        deploy_app.update_autoscaler()
    with pytest.raises(ValueError, match=r"2\.\.3600"):
        deploy_app.update_autoscaler(scaledown_window=1)


def test_update_autoscaler_without_a_token_is_an_auth_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("MODAL_TOKEN_ID", raising=False)
    monkeypatch.delenv("MODAL_TOKEN_SECRET", raising=False)
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(tmp_path / "none.toml"))
    monkeypatch.setenv("MODAL_SERVER_URL", "http://127.0.0.1:9")
    with pytest.raises(modal.exception.AuthError):
        deploy_app.update_autoscaler(min_containers=1)
