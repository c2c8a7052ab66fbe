# Stride — `make run` sets up, ingests and serves; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test bench bench-scale eval browser-deps db-deps lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# torch first, pinned: the CPU build lies on this machine's disk; an unpinned torch pulls CUDA (GBs).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/stride ingest
	$(BIN)/stride serve

# Debian's Chromium for the browser tests (Playwright cannot download its own browser here).
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "installing Debian's chromium for the browser tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; }

# Debian's PostgreSQL server for the feedback store's tests against PostgreSQL: the tests run initdb and start
# their own throwaway server, so only the binaries are needed (no recommends, and no cluster is used).
db-deps:
	@ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || { \
	  echo "installing Debian's postgresql for the PostgreSQL tests"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    --no-install-recommends postgresql >/dev/null; }

# Lint first: a style or type error fails fast, before the slow tiers.
test: install browser-deps db-deps lint
	$(BIN)/pytest

eval: install
	$(BIN)/stride eval --split test

bench: install
	$(BIN)/python -m evals.bench

# Synthetic corpora of ~1k, 10k and 100k chunks (issue 11): ~35 min, most of it building the 100k index;
# SIZES=1000,10000 for a subset (~3 min).
bench-scale: install
	$(BIN)/python -m evals.bench_scale $(if $(SIZES),--sizes $(SIZES))

# ruff and mypy are pinned in pyproject.toml; mypy is strict on ingest/ and service/.
lint: install
	$(BIN)/ruff check ingest service evals tests
	$(BIN)/mypy ingest service evals

clean:
	rm -rf $(VENV) data .pytest_cache
