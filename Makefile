# The project's one task runner. `make run` and `make test` work on a fresh clone.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# the config of `make run` and `make demo`: CONFIG=path, else MONITOR_CONFIG, else config.toml
CONFIG ?= $(or $(MONITOR_CONFIG),config.toml)
STAMP  := $(VENV)/.installed

.PHONY: install run test lint typecheck bench hazards demo clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test]'
	$(BIN)/python -m compileall -q monitor
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/monitor --config $(CONFIG) run

demo: install
	$(BIN)/monitor --config $(CONFIG) demo

lint: install
	$(BIN)/ruff check monitor tests bench
	$(BIN)/ruff format --check monitor tests bench

typecheck: install
	$(BIN)/mypy

test: install lint typecheck
	$(BIN)/python -m pytest --cov --cov-report=term -q -n 2 tests

hazards: install
	$(BIN)/python -m pytest -q -m slow tests

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage
