# Two commands set everything up on a fresh machine:
#   make demo   runs the pipeline end to end on the local stack
#   make test   runs lint, type checks and the whole test suite
# Both create the virtual environment and install what is missing first.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test install system-tools lint typecheck pytest bench stack-up stack-down clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The bench extra too: the test suite runs the benchmark harness (plot included).
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	@touch $(STAMP)

install: $(STAMP) system-tools

system-tools:
	@bash scripts/ensure-system-tools.sh

demo: install
	$(BIN)/agent-dlq demo

lint: install
	$(BIN)/ruff check consumer_patch tests infra bench
	$(BIN)/ruff format --check consumer_patch tests infra bench

typecheck: install
	$(BIN)/mypy --strict consumer_patch bench

pytest: install
	$(BIN)/pytest

test: lint typecheck pytest

bench: install
	$(BIN)/python -m bench

stack-up: install
	$(BIN)/agent-dlq stack up

stack-down: install
	$(BIN)/agent-dlq stack down

clean: stack-down
	rm -rf .stack
