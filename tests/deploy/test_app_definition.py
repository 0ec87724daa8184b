"""The Modal app definition, read back from modal 1.6.4's own objects (no token, no network)."""

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
from deploy.settings import DeploySettings, DeploySettingsError

ROOT = Path(__file__).resolve().parents[2]


def definition(model_cls: Any) -> dict[str, Any]:
    """What Modal will send to its server for the class: spec, function info and the
    arguments captured by the class service function's loader (where modal 1.6.4 keeps the
    autoscaler and snapshot settings until deploy)."""
    from modal._utils.async_utils import synchronizer

    raw = synchronizer._translate_in(model_cls._get_class_service_function())
    load = raw._load
    captured = dict(
        zip(
            load.__code__.co_freevars,
            (c.cell_contents for c in load.__closure__ or ()),
            strict=True,
        )
    )
    raw_cls = synchronizer._translate_in(model_cls)
    web = raw_cls._method_partials["web"].params.webhook_config
    return {
        "gpu": raw._spec.gpus,
        "volumes": raw._spec.volumes,
        "memory": raw._spec.memory,
        "secrets": raw._spec.secrets,
        "image": raw._spec.image,
        "timeout": raw._function_info.timeout,
        "scaledown_window": captured["scaledown_window"],
        "min_containers": captured["min_containers"],
        "max_containers": captured["max_containers"],
        "buffer_containers": captured["buffer_containers"],
        "enable_memory_snapshot": captured["enable_memory_snapshot"],
        "experimental_options": captured["experimental_options"],
        "methods": sorted(raw_cls._method_partials),
        "requires_proxy_auth": web.requires_proxy_auth,
    }


def test_module_level_app_uses_the_defaults() -> None:
    assert deploy_app.app.name == "shuttle-jaguar"
    d = definition(deploy_app.JaguarModel)
    assert d["gpu"] == "H100"
    assert list(d["volumes"]) == ["/weights"]
    assert repr(d["volumes"]["/weights"]) == repr(deploy_app.volume)
    assert d["timeout"] == 600
    assert d["scaledown_window"] == 300
    assert (d["min_containers"], d["buffer_containers"], d["max_containers"]) == (0, 0, 4)
    assert d["enable_memory_snapshot"] is True
    assert not d["experimental_options"]
    assert d["memory"] == 65536
    assert d["methods"] == ["generate", "health", "info", "reload", "web"]
    assert d["requires_proxy_auth"] is False
    assert len(d["secrets"]) == 2  # huggingface-secret + jaguar-api-token
    assert deploy_app.CLASS_NAME == "JaguarModel"


def test_settings_are_read_back_from_modal() -> None:
    s = DeploySettings.from_env(
        {
            "JAGUAR_APP_NAME": "jaguar-test",
            "JAGUAR_GPU": "a100-80gb:2",
            "JAGUAR_TIMEOUT_S": "1200",
            "JAGUAR_SCALEDOWN_WINDOW_S": "60",
            "JAGUAR_MIN_CONTAINERS": "1",
            "JAGUAR_BUFFER_CONTAINERS": "1",
            "JAGUAR_MAX_CONTAINERS": "8",
            "JAGUAR_MEMORY_MB": "98304",
            "JAGUAR_HF_SECRET": "",
            "JAGUAR_VOLUME_NAME": "other-weights",
        }
    )
    app, model_cls = deploy_app.build_app(s)
    assert app.name == "jaguar-test"
    d = definition(model_cls)
    assert d["gpu"] == "A100-80GB:2"
    assert d["timeout"] == 1200
    assert d["scaledown_window"] == 60
    assert (d["min_containers"], d["buffer_containers"], d["max_containers"]) == (1, 1, 8)
    assert d["memory"] == 98304
    assert len(d["secrets"]) == 1  # only the web token secret
    assert "other-weights" in repr(d["volumes"]["/weights"])


def test_gpu_snapshot_mode_sets_the_experimental_option() -> None:
    s = DeploySettings.from_env({"JAGUAR_SNAPSHOT": "gpu"})
    _, model_cls = deploy_app.build_app(s)
    d = definition(model_cls)
    assert d["enable_memory_snapshot"] is True
    assert d["experimental_options"] == {"enable_gpu_snapshot": "True"}


def test_settings_are_baked_into_the_image_env() -> None:
    env = DeploySettings.from_env({"JAGUAR_GPU": "L40S", "JAGUAR_COMPILE": "yes"}).to_env()
    assert env["JAGUAR_GPU"] == "L40S"
    assert env["JAGUAR_COMPILE"] == "true"
    assert DeploySettings.from_env(env) == DeploySettings.from_env(
        {"JAGUAR_GPU": "L40S", "JAGUAR_COMPILE": "1"}
    )


def test_import_fixed_settings_are_refused_by_build_app() -> None:
    with pytest.raises(DeploySettingsError, match="JAGUAR_SNAPSHOT"):
        deploy_app.build_app(DeploySettings(snapshot="off"))
    with pytest.raises(DeploySettingsError, match="JAGUAR_WEB_AUTH"):
        deploy_app.build_app(DeploySettings(web_auth="proxy"))


def _import_in_subprocess(env: dict[str, str]) -> dict[str, Any]:
    code = (
        "import json, sys\n"
        "import deploy.app as d\n"
        "from tests.deploy.test_app_definition import definition\n"
        "x = definition(d.JaguarModel)\n"
        "print(json.dumps({k: x[k] for k in ('enable_memory_snapshot', 'requires_proxy_auth',"
        " 'experimental_options')} | {'secrets': len(x['secrets']),"
        " 'torch': 'torch' in sys.modules}))\n"
    )
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("JAGUAR_")}
    full_env.update(env)
    full_env.pop("MODAL_TOKEN_ID", None)
    full_env.pop("MODAL_TOKEN_SECRET", None)
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


def test_snapshot_off_and_proxy_auth_at_import() -> None:
    got = _import_in_subprocess({"JAGUAR_SNAPSHOT": "off", "JAGUAR_WEB_AUTH": "proxy"})
    assert got["enable_memory_snapshot"] is False
    assert got["requires_proxy_auth"] is True
    assert got["secrets"] == 1  # proxy auth: no token secret, only the HF one
    assert got["torch"] is False  # importing the app never imports torch


def test_bad_settings_fail_at_import_with_a_clear_message() -> None:
    with pytest.raises(subprocess.CalledProcessError) as info:
        _import_in_subprocess({"JAGUAR_GPU": "H1000"})
    assert "DeploySettingsError: JAGUAR_GPU='H1000' is not valid" in info.value.stderr


@pytest.mark.parametrize(
    ("env", "var", "hint"),
    [
        ({"JAGUAR_GPU": "H1000"}, "JAGUAR_GPU", "H100"),
        ({"JAGUAR_GPU": "H100:0"}, "JAGUAR_GPU", "':N'"),
        ({"JAGUAR_SCALEDOWN_WINDOW_S": "1"}, "JAGUAR_SCALEDOWN_WINDOW_S", "from 2 to 3600"),
        ({"JAGUAR_SCALEDOWN_WINDOW_S": "3601"}, "JAGUAR_SCALEDOWN_WINDOW_S", "from 2 to 3600"),
        ({"JAGUAR_TIMEOUT_S": "0"}, "JAGUAR_TIMEOUT_S", "from 1 to 86400"),
        ({"JAGUAR_TIMEOUT_S": "ten"}, "JAGUAR_TIMEOUT_S", "not an integer"),
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
