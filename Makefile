# qunyun — `make help` lists every target.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# Our own modules' bytecode is cached under var/ even where the environment says not to write
# any (PYTHONDONTWRITEBYTECODE): the tests and `make run` start dozens of service processes,
# and each would compile services/ from source again (≈ 0.1–0.3 s of CPU per start).
unexport PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX ?= $(CURDIR)/var/pycache

.DEFAULT_GOAL := help
.PHONY: help install run test test-fast lint fmt typecheck check bench demo faults token vendor clean

help: ## List every target
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml scripts/bootstrap.sh
	@./scripts/bootstrap.sh

install: $(STAMP) ## Create .venv and install qunyun with its dev tools

run: $(STAMP) ## Start broker, Redis, SQLite, the five services on :8001-8005 and the console on :8006 (Ctrl-C stops in order)
	@$(BIN)/python -m tools.devstack

# Three workers, whole files each: most of a test's time is waiting on brokers, consumer
# group joins and processes, which overlaps well even on two cores (two workers kept the
# CPUs 42 % busy: 12.6 min; three take 7.5 min here). TEST_WORKERS=0: one process.
# --no-loadscope-reorder: files go out in collection order, where tests/conftest.py puts the
# slowest first (SLOWEST_FIRST), so no long file starts last while the other worker idles.
TEST_WORKERS ?= 3

test: $(STAMP) ## Run the whole test suite against a real broker, Redis and database
	@$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

test-fast: $(STAMP) ## Run the servers-free tests (tests/unit) in seconds
	@$(BIN)/python -m pytest -q tests/unit $(PYTEST_ARGS)

lint: $(STAMP) ## ruff lint and format check
	@$(BIN)/ruff check services tools tests deploy
	@$(BIN)/ruff format --check services tools tests deploy

fmt: $(STAMP) ## Format and auto-fix with ruff
	@$(BIN)/ruff format services tools tests deploy
	@$(BIN)/ruff check --fix services tools tests deploy

typecheck: $(STAMP) ## mypy on services/ and tools/
	@$(BIN)/mypy services tools

check: lint typecheck ## lint and typecheck

bench: $(STAMP) ## Run the benchmarks and print the ratio table (writes bench-results/)
	@$(BIN)/python -m tools.bench

demo: $(STAMP) ## Fill a running `make run` stack with traffic; show delivery at a platform double (:8090, DEMO_DOUBLE_PORT; Ctrl-C stops it)
	@$(BIN)/python -m tools.simulate demo

faults: $(STAMP) ## Larger fault and fuzz runs than `make test` does
	@QUNYUN_FAULTS_SCALE=large $(BIN)/python -m pytest -q tests/faults $(PYTEST_ARGS)

token: $(STAMP) ## Print a new API token and its config entry (NAME=, GROUPS=, SCOPES=)
	@$(BIN)/python -m services.cli token --name "$${NAME:-ops}" --groups "$${GROUPS:-*}" --scopes "$${SCOPES:-read}"

vendor: $(STAMP) ## Re-fetch the console's pinned JavaScript libraries from npm, checked against their sums (needs npm)
	@$(BIN)/python -m tools.console_vendor

clean: ## Remove the virtualenv, caches and local data (var/: database, Redis data, config, logs)
	rm -rf $(VENV) var bench-results .pytest_cache .mypy_cache .ruff_cache
