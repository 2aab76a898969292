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

# Fresh secrets for whatever .env lacks: no .env at all, or one copied from .env.example
# with ENCRYPTION_KEY, ADMIN_TOKEN or SECRET_KEY left empty. A value already in .env, or
# set in the environment (which wins over .env), is never replaced.
umask 077
.venv/bin/python scripts/ensure_env.py

.venv/bin/python manage.py migrate --noinput
.venv/bin/python manage.py collectstatic --noinput --verbosity 0
.venv/bin/python manage.py import_upstreams --if-empty

# Both `run.sh -- --bind 0.0.0.0:8000` and `run.sh --bind 0.0.0.0:8000` pass the flags to
# gunicorn (a bare "--" would reach gunicorn as the name of its app).
if [ "${1:-}" = "--" ]; then
  shift
fi
echo "==> starting gunicorn"
# gunicorn.conf.py prints where everything is once the sockets are open.
GATEWAY_SHOW_WHERE=1 exec .venv/bin/gunicorn -c gunicorn.conf.py "$@"
