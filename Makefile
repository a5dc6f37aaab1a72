# Two commands do all the set-up on a fresh machine with Python 3.11+ and make:
#   make up    creates the virtualenv, installs, starts the whole system
#   make test  creates the virtualenv, installs, runs the whole suite (lint, types, tests)
# Both install from requirements-dev.lock (every package pinned with its hashes), then
# motcua itself without resolving anything again. `make lock` rewrites the locks after a
# change of pyproject.toml; `make audit` checks them against the advisories.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
# The image's packages (deploy/Dockerfile); the dev lock is the same set plus .[dev].
LOCK := requirements.lock
DEV_LOCK := requirements-dev.lock

.PHONY: up test lint lock audit clean

$(INSTALLED): pyproject.toml $(DEV_LOCK)
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "motcua needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes -r $(DEV_LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

up: $(INSTALLED)
	$(BIN)/motcua up

lint: $(INSTALLED)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

# One universal resolution (any OS, Python 3.11+) with the hashes of every file of each
# release. The build backend ([build-system] requires) is locked too, so that motcua is
# built with --no-build-isolation from a hashed setuptools. The image's lock is
# constrained by the dev lock: both pin the same versions. uv keeps the pins already in
# a lock where it can; `make lock LOCK_FLAGS=--upgrade` moves everything to the newest.
BUILD_REQUIRES := $(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")'
UV_COMPILE := $(BIN)/uv pip compile --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command 'make lock' $(LOCK_FLAGS) pyproject.toml -

lock: $(INSTALLED)
	$(BUILD_REQUIRES) | $(UV_COMPILE) --extra dev -o $(DEV_LOCK)
	$(BUILD_REQUIRES) | $(UV_COMPILE) -c $(DEV_LOCK) -o $(LOCK)

# Needs the advisory service; prints one line and passes when it does not answer.
audit: $(INSTALLED)
	$(BIN)/python deploy/audit_lock.py $(DEV_LOCK)

clean:
	rm -rf $(VENV) var/*.db var/*.key
