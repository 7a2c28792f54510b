# pipvault developer entry points. `make run` and `make test` are all a fresh machine needs
# (Python 3.11 with venv, make, npm); everything else is installed by `make install`.
# `make run` / `make demo` build only .venv (about 1.1 GB) and need neither npm nor SoftHSM2;
# `make install` / `make test` also build node_modules (buf) and .venv-manifests (about 1.6 GB in
# all) and install SoftHSM2 (Debian: apt-get, through sudo when not root) for the PKCS#11 tests.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pipvault-installed
BUF := node_modules/.bin/buf
PYTEST_ARGS ?=

.PHONY: install softhsm run demo test lint lock proto proto-check bench clean

install: $(STAMP) $(BUF) softhsm

# SoftHSM2 (the PKCS#11 token the pkcs11 key-provider tests use): Debian package, installed
# with apt-get when missing (CI runs as root on Debian; elsewhere sudo is tried).
SOFTHSM_LIB ?= /usr/lib/softhsm/libsofthsm2.so
softhsm:
	@if ! command -v softhsm2-util >/dev/null 2>&1 || [ ! -e $(SOFTHSM_LIB) ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq softhsm2 >/dev/null; fi

# Every environment installs from a lock file with hashes (requirements/*.lock, made by
# `make lock`): pip runs with --require-hashes, so nothing a registry released since the lock
# can reach .venv. The two local distributions are installed from the checkout with --no-deps
# and without build isolation (their build backend comes from requirements-bootstrap.lock too).
# PIP_CONFIG_FILE=/dev/null: a machine's own pip settings (extra indexes, wheel folders,
# constraints) cannot change what is installed; only the lock decides.
PIP_ENV := PIP_CONFIG_FILE=/dev/null PIP_FIND_LINKS= PIP_DISABLE_PIP_VERSION_CHECK=1
LOCKED := install --quiet --require-hashes --no-deps --only-binary=:all:
LOCAL := install --quiet --no-deps --no-build-isolation --no-index

$(STAMP): requirements/requirements-bootstrap.lock requirements/requirements-dev.lock pyproject.toml clients/python/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP_ENV) $(BIN)/python -m pip $(LOCKED) -r requirements/requirements-bootstrap.lock
	$(PIP_ENV) $(BIN)/python -m pip $(LOCKED) -r requirements/requirements-dev.lock
	$(PIP_ENV) $(BIN)/python -m pip $(LOCAL) -e clients/python -e .
	$(PIP_ENV) $(BIN)/python -m pip check
	@touch $(STAMP)

## lock: re-resolve every lock file from its .in (the newest releases that satisfy pyproject and
## requirements/*.in), with hashes, for Python 3.11 on every platform. uv resolves (fast, and a
## universal resolution in one pass); pip installs, so a fresh machine needs nothing but Python.
UV_VERSION := 0.13.10
UV_VENV := .venv-uv
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --only-binary :all: --quiet
lock:
	@test -x $(UV_VENV)/bin/uv || { $(PYTHON) -m venv $(UV_VENV) && \
	  $(UV_VENV)/bin/python -m pip install --quiet uv==$(UV_VERSION); }
	$(UV_VENV)/bin/uv pip compile $(LOCK_FLAGS) requirements/bootstrap.in -o requirements/requirements-bootstrap.lock
	$(UV_VENV)/bin/uv pip compile $(LOCK_FLAGS) --no-emit-package pipvault \
	  --no-emit-package pipvault-client requirements/dev.in -o requirements/requirements-dev.lock
	$(UV_VENV)/bin/uv pip compile $(LOCK_FLAGS) --no-emit-package pipvault \
	  --no-emit-package pipvault-client requirements/image.in -o requirements/requirements-image.lock
	$(UV_VENV)/bin/uv pip compile $(LOCK_FLAGS) requirements/manifests.in -o requirements/requirements-manifests.lock
	$(UV_VENV)/bin/python tools/lock_digest.py --write
	@echo "locks refreshed: run \`make proto\` if grpcio-tools moved, then \`make test\`"

$(BUF): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $(BUF)

## run: the vault in dev mode (SQLite + local keyring under ./.pipvault), until Ctrl-C
## (needs only .venv: no SoftHSM2, no npm)
run: $(STAMP)
	$(BIN)/pipvault dev

## demo: a self-contained signing flow against an in-process dev vault
demo: $(STAMP)
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
test: lint softhsm
	@mkdir -p .reports
	$(BIN)/pytest --junitxml=.reports/pytest.xml $(PYTEST_ARGS)

## bench: pipvault vs a bare gRPC floor and OpenBao, each in its own process, plus the fan-out
## case, scale runs and a py-spy profile (~10 min; `.venv/bin/python -m bench --quick` for a short run);
## results, ratios and the chart go to bench/results/latest.*
bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(UV_VENV) node_modules .pytest_cache .mypy_cache .ruff_cache

# --- security gate (issue 12): fuzzing and the promise -> test -> result report ------------
FUZZ_SECONDS ?= 60
FUZZ_EXAMPLES ?= 200
REPORTS := .reports

.PHONY: fuzz security-report

## fuzz: atheris on the envelope parser and the page-token decoder (FUZZ_SECONDS each, corpus
## and crash artifacts under .reports/fuzz/), then the descriptor fuzzer against a live vault
## with FUZZ_EXAMPLES random requests per RPC
fuzz: install
	@mkdir -p $(REPORTS)/fuzz/envelope $(REPORTS)/fuzz/page_token
	$(BIN)/python tests/fuzz/fuzz_envelope.py -max_total_time=$(FUZZ_SECONDS) \
	  -artifact_prefix=$(REPORTS)/fuzz/ -rss_limit_mb=1024 $(REPORTS)/fuzz/envelope
	$(BIN)/python tests/fuzz/fuzz_page_token.py -max_total_time=$(FUZZ_SECONDS) \
	  -artifact_prefix=$(REPORTS)/fuzz/ -rss_limit_mb=1024 $(REPORTS)/fuzz/page_token
	PIPVAULT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) PIPVAULT_FUZZ_RANDOM=1 \
	  $(BIN)/pytest -q -p no:cacheprovider tests/fuzz/test_fuzz_rpc_descriptors.py

## security-report: promise -> attacking test -> result, from the last `make test` run
## (its JUnit XML is .reports/pytest.xml; the mapping is the table in SECURITY.md)
security-report: install
	$(BIN)/python -m tests.security.report SECURITY.md $(REPORTS)/pytest.xml

# --- deploy manifests (deploy/k8s): rendered with kubectl kustomize, validated offline --------
# kubernetes-validate, checkov and hadolint live in their own virtualenv (checkov pins many
# dependencies that must not disturb the app's). `make install` creates it; `make test` runs
# `manifests`.
MANIFESTS_VENV := .venv-manifests
MANIFESTS_STAMP := $(MANIFESTS_VENV)/.pipvault-installed
MANIFESTS_OUT := build/manifests
KUBECTL ?= kubectl
KUBE_OVERLAYS := dev prod

.PHONY: manifests clean-manifests

install: $(MANIFESTS_STAMP)

$(MANIFESTS_STAMP): requirements/requirements-bootstrap.lock requirements/requirements-manifests.lock
	@test -x $(MANIFESTS_VENV)/bin/python || $(PYTHON) -m venv $(MANIFESTS_VENV)
	$(PIP_ENV) $(MANIFESTS_VENV)/bin/python -m pip $(LOCKED) -r requirements/requirements-bootstrap.lock
	$(PIP_ENV) $(MANIFESTS_VENV)/bin/python -m pip $(LOCKED) -r requirements/requirements-manifests.lock
	@touch $(MANIFESTS_STAMP)

## manifests: render each kustomize overlay and validate it (kubernetes-validate --strict, checkov);
##   lint deploy/Dockerfile (hadolint)
manifests: $(MANIFESTS_STAMP)
	@command -v $(KUBECTL) >/dev/null || { echo "manifests: $(KUBECTL) not found" >&2; exit 1; }
	@mkdir -p $(MANIFESTS_OUT)
	@for overlay in $(KUBE_OVERLAYS); do \
	  echo "kubectl kustomize deploy/k8s/overlays/$$overlay"; \
	  $(KUBECTL) kustomize deploy/k8s/overlays/$$overlay > $(MANIFESTS_OUT)/$$overlay.yaml || exit 1; \
	done
	MANIFESTS_VENV=$(MANIFESTS_VENV) deploy/k8s/validate.sh \
	  $(foreach o,$(KUBE_OVERLAYS),$(MANIFESTS_OUT)/$(o).yaml)
	$(MANIFESTS_VENV)/bin/hadolint deploy/Dockerfile

test: manifests

clean: clean-manifests
clean-manifests:
	rm -rf $(MANIFESTS_VENV) $(MANIFESTS_OUT)
