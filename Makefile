# The two commands README.md starts with: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test install lint typecheck system-deps sandbox clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Pinned torch first: an unpinned one would pull a multi-GB CUDA build.
$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,demucs,dev]"
	touch $@

install: $(VENV)/.installed

# Debian's Chromium for the admin browser tests (Playwright's own download cannot work offline).
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver; \
	  else echo "!!! chromium missing: browser tests will be skipped (apt-get install chromium)"; fi; }

# Split a generated 10 s song on the example project with the embedded defaults
# (SQLite, eager Celery, local backend, spectral engine): no service, no network.
demo: $(VENV)/.installed
	cd example_project && ../$(BIN)/python manage.py migrate --noinput -v 0
	cd example_project && ../$(BIN)/python manage.py split_audio --demo --out stems_out

test: $(VENV)/.installed system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check django_aistemsplitter tests example_project bench
	$(BIN)/ruff format --check django_aistemsplitter tests example_project bench

typecheck: $(VENV)/.installed
	$(BIN)/mypy

sandbox: $(VENV)/.installed
	$(BIN)/python -m django_aistemsplitter.sandbox --port 8765 --engine spectral

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info
