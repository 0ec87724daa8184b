"""The server fuzzed from its own OpenAPI schema: schemathesis, every check, zero failures.

A live tiny-model server (the real ``create_app`` under uvicorn on 127.0.0.1, the hardened
protocol of ``jaguar serve``) is fuzzed by the schemathesis CLI with all its checks, a fixed
seed and a bounded number of examples per operation; ``schemathesis_hooks.py`` keeps the
generated images small. The longer run is the same command with more examples (see
``docs/server.md``): ``JAGUAR_FUZZ_EXAMPLES=500 pytest tests/server/test_schemathesis.py``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import LiveServer

pytest.importorskip("schemathesis")

TOKEN = "fuzz-token"
SEED = 14
#: Examples per operation and phase in the suite; raise it for the longer run.
EXAMPLES = int(os.environ.get("JAGUAR_FUZZ_EXAMPLES", "12"))
ROOT = Path(__file__).resolve().parents[2]


def schemathesis_command(url: str, report: Path, examples: int = EXAMPLES) -> list[str]:
    """The ``st run`` command line used here and documented in docs/server.md."""
    return [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--seed",
        str(SEED),
        "--max-examples",
        str(examples),
        "--header",
        f"Authorization: Bearer {TOKEN}",
        "--workers",
        "1",
        "--no-shrink",
        "--request-timeout",
        "60",
        "--suppress-health-check",
        "all",
        # multipart-only (image files); see schemathesis_hooks.before_init_operation
        "--exclude-path",
        "/v1/images/edits",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
    ]


def test_schemathesis_all_checks_zero_failures(
    tiny_engine: Any, make_server, tmp_path: Path
) -> None:
    server: LiveServer = make_server(
        tiny_engine,
        api_key=TOKEN,
        admin_key="admin-not-sent",
        # the hooks send positive cases' webhooks to 127.0.0.1 (schemathesis_hooks.WEBHOOK_URL)
        webhook_secret="fuzz-webhook-secret",
        webhook_allow=["127.0.0.1/32"],
    )
    report = tmp_path / "events.ndjson"
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.server.schemathesis_hooks",
        "PYTHONPATH": str(ROOT),
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        schemathesis_command(server.url, report),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-8000:]
    generated = re.search(r"(\d+) generated", output)
    assert generated is not None and int(generated.group(1)) >= EXAMPLES * 8, output[-3000:]
    assert re.search(r"\bfailures?\b", output.splitlines()[-1]) is None, output[-3000:]
    events = [json.loads(line) for line in report.read_text().splitlines() if line.strip()]
    assert events, output[-2000:]
    print(output[-1200:])  # the summary, in the -rA / -s output
