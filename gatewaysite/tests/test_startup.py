"""The process refuses to start without a usable encryption key, and says how to make one."""

import os
import subprocess
import sys

import pytest
from cryptography.fernet import Fernet

from testing.helpers import ROOT


def _env(**overrides):
    env = {
        k: v for k, v in os.environ.items() if k not in ("ENCRYPTION_KEY", "ENCRYPTION_KEY_FILE")
    }
    env.update(SECRET_KEY="s" * 50, DJANGO_SETTINGS_MODULE="gatewaysite.settings")
    env.update(overrides)
    return env


def _run(args, env, timeout=60):
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


BAD_KEYS = {"missing": None, "empty": "", "malformed": "not-a-fernet-key-at-all"}


@pytest.mark.parametrize("case", sorted(BAD_KEYS))
def test_manage_py_exits_with_the_how_to(case, tmp_path):
    env = _env(DATA_DIR=str(tmp_path))
    if BAD_KEYS[case] is not None:
        env["ENCRYPTION_KEY"] = BAD_KEYS[case]
    result = _run([sys.executable, "manage.py", "check"], env)
    assert result.returncode != 0
    assert "Fernet.generate_key()" in result.stderr
    if BAD_KEYS[case]:
        assert BAD_KEYS[case] not in result.stderr + result.stdout


@pytest.mark.parametrize("case", sorted(BAD_KEYS))
def test_gunicorn_master_exits_with_the_how_to(case, tmp_path):
    env = _env(DATA_DIR=str(tmp_path))
    if BAD_KEYS[case] is not None:
        env["ENCRYPTION_KEY"] = BAD_KEYS[case]
    result = _run(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", "127.0.0.1:0"], env
    )
    assert result.returncode != 0
    assert "Fernet.generate_key()" in result.stderr
    assert "Booting worker" not in result.stderr


def test_key_file_with_trailing_newline_works(tmp_path):
    key_file = tmp_path / "key"
    key_file.write_text(Fernet.generate_key().decode() + "\n")
    env = _env(ENCRYPTION_KEY_FILE=str(key_file), DATA_DIR=str(tmp_path))
    result = _run([sys.executable, "manage.py", "check"], env)
    assert result.returncode == 0, result.stderr
