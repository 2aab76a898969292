#!/usr/bin/env bash
# Set up (once) and start the gateway on SQLite: the README's first command.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating the virtualenv in .venv"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing requirements.txt"
  .venv/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.txt
  echo "$want" > "$stamp"
fi

if [ ! -f .env ]; then
  umask 077
  .venv/bin/python - <<'PY'
import secrets
from cryptography.fernet import Fernet
lines = [
    "# Written once by the setup command. Keep it private; back up ENCRYPTION_KEY.",
    f"ENCRYPTION_KEY={Fernet.generate_key().decode()}",
    f"ADMIN_TOKEN={secrets.token_urlsafe(32)}",
    f"SECRET_KEY={secrets.token_urlsafe(50)}",
]
with open(".env", "x") as f:
    f.write("\n".join(lines) + "\n")
PY
  echo "==> wrote $(pwd)/.env with a fresh ENCRYPTION_KEY, ADMIN_TOKEN and SECRET_KEY."
  echo "    Back up ENCRYPTION_KEY now: without it, stored upstream secrets cannot be read."
  echo "    The admin API token is ADMIN_TOKEN in that file."
fi

.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py collectstatic --noinput --verbosity 0
.venv/bin/python manage.py import_upstreams --if-empty

echo "==> starting gunicorn (Ctrl-C stops it)"
exec .venv/bin/gunicorn -c gunicorn.conf.py "$@"
