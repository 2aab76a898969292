"""The first hour: `make run` on a fresh clone, a .env copied from .env.example, flags for
gunicorn, and the lines that say where everything is once it has started."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from gatewaysite.startup import where_things_are

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
from ensure_env import ensure_env  # noqa: E402

sys.path.pop(0)


def _assignments(path: Path) -> dict[str, str]:
    return dict(
        line.split("=", 1)
        for line in path.read_text().splitlines()
        if "=" in line and line[0] != "#"
    )


def test_no_env_gets_three_fresh_secrets_readable_only_by_its_owner(tmp_path):
    env = tmp_path / ".env"
    assert ensure_env(env, {}) == ["ENCRYPTION_KEY", "ADMIN_TOKEN", "SECRET_KEY"]
    values = _assignments(env)
    Fernet(values["ENCRYPTION_KEY"].encode())  # a valid key, or this raises
    assert len(values["ADMIN_TOKEN"]) >= 40 and len(values["SECRET_KEY"]) >= 60
    assert env.stat().st_mode & 0o777 == 0o600
    assert ensure_env(env, {}) == [] and _assignments(env) == values  # never replaced


def test_a_copy_of_env_example_gets_its_empty_secrets_filled_in_place(tmp_path):
    env = tmp_path / ".env"
    shutil.copy(ROOT / ".env.example", env)
    before = env.read_text().splitlines()
    assert ensure_env(env, {}) == ["ENCRYPTION_KEY", "ADMIN_TOKEN", "SECRET_KEY"]
    after = env.read_text().splitlines()
    assert len(after) == len(before)
    changed = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert [old for old, _ in changed] == ["ENCRYPTION_KEY=", "ADMIN_TOKEN=", "SECRET_KEY="]
    assert all(new.split("=", 1)[1] for _, new in changed)


@pytest.mark.parametrize(
    ("text", "environ", "written"),
    [
        ("ADMIN_TOKEN=mine\n", {}, ["ENCRYPTION_KEY", "SECRET_KEY"]),
        ("", {"SECRET_KEY": "from-the-environment"}, ["ENCRYPTION_KEY", "ADMIN_TOKEN"]),
        ("ENCRYPTION_KEY_FILE=/run/secrets/k\n", {}, ["ADMIN_TOKEN", "SECRET_KEY"]),
        ("", {"ENCRYPTION_KEY_FILE": "/run/secrets/k"}, ["ADMIN_TOKEN", "SECRET_KEY"]),
        ('export ENCRYPTION_KEY="x"\nADMIN_TOKEN=a\nSECRET_KEY=b\n', {}, []),
    ],
)
def test_only_what_is_missing_is_written(tmp_path, text, environ, written):
    env = tmp_path / ".env"
    env.write_text(text)
    assert ensure_env(env, environ) == written
    assert env.read_text().startswith(text)


@pytest.mark.parametrize(
    ("address", "root"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://0.0.0.0:9000", "http://127.0.0.1:9000"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("http://[::]:8000", "http://127.0.0.1:8000"),
    ],
)
def test_where_things_are_names_reachable_urls(address, root):
    lines = where_things_are(addresses=[address], workers=2, admin_token_set=True)
    text = "\n".join(lines)
    for url in ("/v1", "/django-admin/", "/admin/", "/docs", "/healthz", "/readyz"):
        assert f"{root}{url}" in text
    assert "manage.py createsuperuser" in text and "ADMIN_TOKEN in .env" in text
    assert f"{root}/metrics  (off: set METRICS_TOKEN)" in text


def test_where_things_are_says_when_the_admin_api_is_closed():
    lines = where_things_are(addresses=["http://127.0.0.1:8000"], workers=2, admin_token_set=False)
    assert any("closed: ADMIN_TOKEN is empty" in line for line in lines)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_sh_on_a_copied_env_example_passes_flags_after_dashes_and_says_where(tmp_path):
    """The README's `make run` on a fresh clone whose .env was copied from .env.example."""
    clone = tmp_path / "clone"
    tracked = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for name in filter(None, tracked):
        source = ROOT / name.decode()
        if source.is_file():
            (clone / name.decode()).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, clone / name.decode())
    # The test's own .venv: this environment's programs, and the stamp that says
    # requirements.txt is installed, so run.sh installs nothing into a shared virtualenv.
    venv = clone / ".venv"
    (venv / "bin").mkdir(parents=True)
    for program in ("python", "gunicorn"):
        (venv / "bin" / program).symlink_to(Path(sys.prefix) / "bin" / program)
    (venv / "lib").symlink_to(Path(sys.prefix) / "lib", target_is_directory=True)
    shutil.copy(Path(sys.prefix) / "pyvenv.cfg", venv / "pyvenv.cfg")
    digest = hashlib.sha256((clone / "requirements.txt").read_bytes()).hexdigest()
    (venv / ".requirements.sha").write_text(digest + "\n")
    shutil.copy(clone / ".env.example", clone / ".env")
    port = _free_port()
    environ = {
        k: v
        for k, v in os.environ.items()
        if k not in {"ENCRYPTION_KEY", "ADMIN_TOKEN", "SECRET_KEY", "DATABASE_URL", "DATA_DIR"}
        and not k.startswith(("GUNICORN_", "DJANGO_"))
    }
    environ |= {"DATA_DIR": str(tmp_path / "data"), "STATIC_ROOT": str(tmp_path / "static")}
    process = subprocess.Popen(
        ["scripts/run.sh", "--", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=clone,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen: list[str] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            seen.append(line)
            if "Ctrl-C stops it." in line:
                break
        out = "".join(seen)
        assert "Ctrl-C stops it." in out, out[-3000:]
        assert "wrote a fresh ENCRYPTION_KEY, ADMIN_TOKEN, SECRET_KEY" in out
        assert f"serving on http://127.0.0.1:{port} (1 worker)" in out
        assert f"admin site:           http://127.0.0.1:{port}/django-admin/" in out
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as answer:
            assert answer.status == 200
        assert _assignments(clone / ".env")["ADMIN_TOKEN"]
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
        process.stdout.close()
