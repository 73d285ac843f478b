# GuardPost: `make demo` runs the whole system locally, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "GuardPost needs Python 3.11 or newer (found " + sys.version.split()[0] + "); set PYTHON=python3.11")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=68,<81" wheel
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	# face_recognition declares the source-only `dlib`; its real dependencies (dlib-bin, models) come from pyproject.
	$(BIN)/python -m pip install --quiet --no-deps "face_recognition==1.3.0"
	touch $(STAMP)

# Browser tests drive Debian's chromium (never a browser download); installed here when missing.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	  else echo "chromium is missing and installing it needs root: apt-get install -y --no-install-recommends chromium" >&2; exit 2; fi; \
	  echo "installing Debian's chromium for the browser tests"; \
	  $$sudo apt-get update -q && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -q --no-install-recommends chromium; \
	fi

demo: install
	$(BIN)/guardpost demo

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m benchmarks.verification --labels ../shared/faces/labels.csv

clean:
	rm -rf $(VENV) var .pytest_cache
