# pipvault developer entry points. `make run` and `make test` are all a fresh machine needs
# (Python 3.11 with venv, make, npm); everything else is installed by `make install`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pipvault-installed
BUF := node_modules/.bin/buf
PYTEST_ARGS ?=

.PHONY: install run demo test lint proto proto-check bench clean

install: $(STAMP) $(BUF)

$(STAMP): pyproject.toml clients/python/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e clients/python -e '.[dev]'
	@touch $(STAMP)

$(BUF): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(BUF)

## run: the vault in dev mode (SQLite + local keyring under ./.pipvault), until Ctrl-C
run: install
	$(BIN)/pipvault dev

## demo: a self-contained signing flow against an in-process dev vault
demo: install
	$(BIN)/pipvault demo

## proto: lint the API and regenerate the committed stubs
proto: install
	$(BUF) lint
	$(BUF) generate

## lint: API lint + breaking check, ruff, mypy, import-linter
lint: install
	$(BUF) lint
	@if git rev-parse -q --verify HEAD~1 >/dev/null 2>&1 && \
	    git cat-file -e HEAD~1:buf.yaml 2>/dev/null; then \
	  $(BUF) breaking --against '.git#ref=HEAD~1'; fi
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy vault_server clients/python/pipvault_client clients/python/vaultctl
	$(BIN)/lint-imports

## test: everything (lint, then the whole pytest suite on SQLite, PostgreSQL and OpenBao)
test: lint
	$(BIN)/pytest $(PYTEST_ARGS)

## bench: pipvault vs a bare gRPC floor and OpenBao, each in its own process, plus scale runs
## and a py-spy profile (~10 min; `.venv/bin/python -m bench --quick` for a short run);
## results, ratios and the chart go to bench/results/latest.*
bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
