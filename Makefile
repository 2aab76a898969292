.PHONY: run test lint format bench lock

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
	.venv/bin/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.txt
	.venv/bin/python bench/run.py $(BENCH_ARGS)

# requirements*.in hold what we chose; the .txt files pin and hash everything they pull in.
# Edit an .in file, then run this and commit both.
PIP_COMPILE = CUSTOM_COMPILE_COMMAND="make lock" .venv/bin/pip-compile --quiet --generate-hashes \
	--allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links
lock:  ## recompile requirements.txt and requirements-dev.txt from the .in files
	[ -x .venv/bin/pip-compile ] || .venv/bin/pip install --quiet --disable-pip-version-check pip-tools
	$(PIP_COMPILE) --output-file requirements.txt requirements.in
	$(PIP_COMPILE) --output-file requirements-dev.txt requirements-dev.in
