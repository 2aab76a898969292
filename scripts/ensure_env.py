"""Write fresh secrets into .env for whatever it lacks (run by scripts/run.sh).

No .env at all, or one copied from .env.example with ENCRYPTION_KEY, ADMIN_TOKEN or
SECRET_KEY left empty: each missing one gets a fresh value. A value already in .env, or
set in the environment (which wins over .env), is never replaced.
"""

from __future__ import annotations

import os
import re
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path

from cryptography.fernet import Fernet

FRESH = {
    "ENCRYPTION_KEY": lambda: Fernet.generate_key().decode(),
    "ADMIN_TOKEN": lambda: secrets.token_urlsafe(32),
    "SECRET_KEY": lambda: secrets.token_urlsafe(50),
}
_ASSIGNMENT = re.compile(
    r"^[ \t]*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(.*?)[ \t]*$"
)


def ensure_env(path: Path, environ: Mapping[str, str]) -> list[str]:
    """Fill the secrets missing from the .env at path; return the names written."""
    text = path.read_text() if path.exists() else ""
    lines = text.splitlines()
    values = {m[1]: m[2].strip("'\"") for m in map(_ASSIGNMENT.match, lines) if m}

    def has(name: str) -> bool:
        return bool(environ.get(name) or values.get(name))

    wanted = [
        name
        for name in FRESH
        if not has(name) and not (name == "ENCRYPTION_KEY" and has("ENCRYPTION_KEY_FILE"))
    ]
    if not wanted:
        return []
    if not lines:
        lines = ["# Written by the setup command. Keep it private; back up ENCRYPTION_KEY."]
    for name in wanted:
        line = f"{name}={FRESH[name]()}"
        empty = [i for i, old in enumerate(lines) if (m := _ASSIGNMENT.match(old)) and m[1] == name]
        if empty:
            lines[empty[0]] = line  # the empty "NAME=" a copy of .env.example has
        else:
            lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)
    return wanted


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ".env")
    written = ensure_env(path, os.environ)
    if written:
        print(f"==> wrote a fresh {', '.join(written)} into {path.resolve()}")
        if "ENCRYPTION_KEY" in written:
            print(
                "    Back up ENCRYPTION_KEY now: without it, stored upstream secrets cannot be read."
            )
        if "ADMIN_TOKEN" in written:
            print("    The admin API token is ADMIN_TOKEN in that file.")


if __name__ == "__main__":
    main()
