.PHONY: run test lint format bench

run:  ## set up once and start the gateway on SQLite; gunicorn flags: make run RUN_ARGS="--bind 0.0.0.0:8000"
	./scripts/run.sh $(RUN_ARGS)

test:  ## every test, on SQLite and on PostgreSQL
	./scripts/test.sh

lint:
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

format:
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

bench:  ## the performance tables (docs/performance.md); needs only requirements.txt
	[ -x .venv/bin/python ] || python3 -m venv .venv
	.venv/bin/pip install --quiet --disable-pip-version-check -r requirements.txt
	.venv/bin/python bench/run.py $(BENCH_ARGS)
