"""The README's quickstart, run as written: its commands 2 to 5 (token, upstream, key,
SDK call) against a running gateway, with the fake provider in OpenAI's place."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from upstreams.models import Upstream

README = Path(__file__).resolve().parents[2] / "README.md"


def quickstart_blocks() -> list[str]:
    text = README.read_text()
    section = text.split("\n## Quickstart\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def test_the_quickstart_is_five_commands():
    first, rest = quickstart_blocks()
    assert first.strip().startswith("make run")
    numbered = re.findall(r"# (\d)\. ", first + rest)
    assert numbered == ["1", "2", "3", "4", "5"]


def test_the_quickstart_reaches_the_model_through_the_gateway(
    gateway, provider, admin_token, tmp_path
):
    _, commands = quickstart_blocks()
    script = (
        commands.replace("http://127.0.0.1:8000", gateway.url)
        .replace("https://api.openai.com/v1", provider.base_url)
        # The SDK is installed here already; the test never installs anything.
        .replace(".venv/bin/pip install -q openai && ", "")
        .replace(".venv/bin/python", sys.executable)
    )
    (tmp_path / ".env").write_text(f"ADMIN_TOKEN={admin_token}\n")
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    # What the fake provider answers, printed by the SDK call of command 5.
    assert run.stdout.strip().endswith("chunk-0 chunk-1 chunk-2")
    assert Upstream.objects.filter(name="openai", is_default=True).exists()
    assert provider.requests[-1].path == "/v1/chat/completions"
