#!/usr/bin/env bash
# Run every test, on SQLite and then on PostgreSQL: the README's second command.
# Extra arguments go to pytest (e.g. scripts/test.sh -k proxy, or -n 0 for one process).
# Each half runs on TEST_WORKERS pytest-xdist workers (default 2, the cores we plan for);
# testing/parallel.py keeps them apart and runs the canary sweep after all of them.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=.venv/.requirements-dev.sha
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing requirements-dev.txt"
  .venv/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.txt
  echo "$want" > "$stamp"
fi

# The tests get their own fresh secrets, never the ones in .env.
export ENCRYPTION_KEY=$(.venv/bin/python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())")
export ADMIN_TOKEN=$(.venv/bin/python -c "import secrets; print(secrets.token_urlsafe(32))")
export SECRET_KEY=$(.venv/bin/python -c "import secrets; print(secrets.token_urlsafe(50))")
export DEBUG=false
unset ENCRYPTION_KEY_FILE ENCRYPTION_KEY_PREVIOUS REDIS_URL UPSTREAMS DATA_DIR
export DATA_DIR=${TEST_DATA_DIR:-$(pwd)/data/test}
mkdir -p "$DATA_DIR"
PG_URL=${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/gateway}
PYTEST=(.venv/bin/python -m pytest -n "${TEST_WORKERS:-2}")

echo "==> lint and checks"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
DATABASE_URL= .venv/bin/python manage.py check --fail-level WARNING
DATABASE_URL= .venv/bin/python manage.py makemigrations --check --dry-run

echo "==> tests on SQLite"
DATABASE_URL= "${PYTEST[@]}" "$@"

echo "==> tests on PostgreSQL ($PG_URL)"
if ! .venv/bin/python -c "import psycopg,sys; psycopg.connect(sys.argv[1].rsplit('/',1)[0]+'/postgres', connect_timeout=5).close()" "$PG_URL"; then
  echo "PostgreSQL does not answer at $PG_URL: the PostgreSQL half of the suite cannot run." >&2
  exit 1
fi
# Only the tests that reach the database: the others ran in the SQLite half (testing/halves.py).
DATABASE_URL=$PG_URL "${PYTEST[@]}" --database-tests-only "$@"
