# Two entry points (see README): `make demo` runs the offline walk-through, `make test` the suite.
# Both create .venv on first use. Override PYTHON or TORCH to taste, e.g. TORCH="torch torchvision".

PYTHON ?= python3
VENV   ?= .venv
TORCH  ?= torch==2.14.1 torchvision==0.29.1
BIN     = $(VENV)/bin

.PHONY: demo test lint setup clean

demo: $(VENV)/.installed
	$(BIN)/vitron demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

setup: $(VENV)/.installed

# torch first and pinned, so pip takes the local wheel where there is one instead of a fresh download.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

clean:
	rm -rf $(VENV) vitron-demo vitron-outputs .pytest_cache
