# The two commands README.md starts with: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test install lint typecheck system-deps sandbox docs messages dist clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Pinned torch first: an unpinned one would pull a multi-GB CUDA build.
$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,demucs,dev,docs,bench]"
	touch $@

install: $(VENV)/.installed

# Debian packages the tests need: Chromium for the browser tests (Playwright's own
# download cannot work offline), espeak-ng for the speech voice of an engine test,
# gettext for the translation tests, fluidsynth and its General MIDI sound font for
# the benchmark's quality_sampled figure. Recommends are skipped: Chromium's would
# pull systemd, udev and avahi into the machine.
system-deps:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v espeak-ng >/dev/null 2>&1 || missing="$$missing espeak-ng"; \
	command -v msgfmt >/dev/null 2>&1 || missing="$$missing gettext"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	command -v jq >/dev/null 2>&1 || missing="$$missing jq"; \
	command -v fluidsynth >/dev/null 2>&1 || missing="$$missing fluidsynth"; \
	[ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || missing="$$missing fluid-soundfont-gm"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else echo "!!! missing:$$missing -- the tests needing them will skip (apt-get install --no-install-recommends$$missing)"; fi; \
	fi

# Split a generated 10 s song on the example project with the embedded defaults
# (SQLite, eager Celery, local backend, spectral engine): no service, no network.
demo: $(VENV)/.installed
	cd example_project && ../$(BIN)/python manage.py migrate --noinput -v 0
	cd example_project && ../$(BIN)/python manage.py split_audio --demo --out stems_out

test: $(VENV)/.installed system-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check django_aistemsplitter tests example_project bench examples docs
	$(BIN)/ruff format --check django_aistemsplitter tests example_project bench examples docs

typecheck: $(VENV)/.installed
	$(BIN)/mypy

# The documentation site; any Sphinx warning fails the build.
docs: $(VENV)/.installed
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html

# Refresh the translation catalogues from the marked strings, then compile them.
# Translate the new entries in django_aistemsplitter/locale/*/LC_MESSAGES/django.po.
messages: $(VENV)/.installed system-deps
	cd django_aistemsplitter && ../$(BIN)/django-admin makemessages -l ko --add-location file --no-obsolete
	cd django_aistemsplitter && ../$(BIN)/django-admin compilemessages

# The release files (wheel and sdist) in dist/, checked.
dist: $(VENV)/.installed
	rm -rf dist
	$(BIN)/python -m build --outdir dist .
	$(BIN)/twine check --strict dist/*

sandbox: $(VENV)/.installed
	$(BIN)/python -m django_aistemsplitter.sandbox --port 8765 --engine spectral

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build dist *.egg-info docs/_build
