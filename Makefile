# Garrison: `make run` serves on the development ports, `make test` runs the suite.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
TEST_WORKERS ?= 4

.PHONY: run test install test-deps lint bench clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/.installed

run: install
	@if [ ! -f var/garrison.toml ]; then $(BIN)/garrison init --data-dir var; fi
	$(BIN)/garrison serve --config var/garrison.toml

test-deps:
	bash scripts/install-test-deps.sh

test: install test-deps
	$(BIN)/python -m pytest -n $(TEST_WORKERS) -q -p no:cacheprovider

lint: install
	$(BIN)/pip install -q ruff
	$(BIN)/ruff check src tests

bench: install
	bash bench/smtp_source.sh

clean:
	rm -rf $(VENV) build dist src/*.egg-info
