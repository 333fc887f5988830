# Two entry points (see README): `make demo` runs the offline demo session, `make test` the suite.
# Both create .venv on first use from requirements.lock, so a fresh install gets exactly the
# versions the suite passed with. `make lock` rewrites the lock from a venv you tested;
# `make test-latest` tries the newest versions pyproject.toml admits in a throw-away venv.

PYTHON ?= python3
VENV   ?= .venv
LOCK   ?= requirements.lock
BIN     = $(VENV)/bin
# torch and torchvision are pinned in pyproject's set-up and in the lock: on this machine kind pip
# takes them from the local wheel store instead of a multi-GB download.
TORCH  ?= torch==2.14.1 torchvision==0.29.1
LATEST ?= .venv-latest

.PHONY: demo nano test test-fast lint setup lock test-latest clean

demo: $(VENV)/.installed
	$(BIN)/vitron demo

# Every trained part of the nano profile from nothing (backends, then the planner, then the diffusion
# VAE -> text-to-image -> inpainting), seed 0, into ./vitron-nano (resumable; NANO_OUT=tools/profiles/nano
# replaces the committed profile).
NANO_OUT ?= vitron-nano
nano: $(VENV)/.installed
	$(BIN)/vitron train --profile nano --seed 0 --out $(NANO_OUT)

# Two workers, as CI has two cores (each test keeps one torch thread; a worker holds about 4 GB);
# then, alone, the tests marked `two_threads`, which train on both cores: beside a busy worker
# their OpenMP threads wait on each other (the micro planner's test, 194 s alone, hit its 600 s
# time-out there).
TEST_WORKERS ?= 2
test: $(VENV)/.installed
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -m "not two_threads"
	$(BIN)/python -m pytest -m two_threads

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

setup: $(VENV)/.installed

# Every package, direct and transitive, at the locked version (no pip cache: the CUDA build of torch
# and its libraries make a 7.4 GB venv, and a cached copy would double that); then the project itself,
# editable, without letting pip resolve anything else; then a consistency check.
$(VENV)/.installed: pyproject.toml $(LOCK)
	@.ci/check_disk.sh $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --no-cache-dir --requirement $(LOCK)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	$(BIN)/pip check
	touch $@

# Freeze a venv in which the suite passed (default .venv; `make lock VENV=.venv-latest` after a
# green `make test-latest` moves the lock forward).
lock:
	$(BIN)/python .ci/lockfile.py write --output $(LOCK)

# The newest versions the ranges in pyproject.toml admit, in a throw-away venv: run it before a
# release and whenever a dependency publishes a new version, to learn of a break before users do.
test-latest:
	rm -rf $(LATEST)
	$(PYTHON) -m venv $(LATEST)
	$(LATEST)/bin/pip install --quiet $(TORCH)
	$(LATEST)/bin/pip install --quiet --upgrade --upgrade-strategy eager -e ".[dev]"
	$(LATEST)/bin/python .ci/lockfile.py diff --lock $(LOCK)
	$(LATEST)/bin/python -m pytest -p no:cacheprovider

clean:
	rm -rf $(VENV) $(LATEST) vitron-demo vitron-outputs vitron-nano .pytest_cache
