# Q16 Curator: run, test and maintenance targets.
#
#   make run    start the embedded stack (SQLite, embedded Redis, one Celery worker, web)
#   make test   start the test services (PostgreSQL, Redis, Chromium) and run pytest
#   make help   list every target
#
# The virtual environment lives in .venv and is created on first use; the project is
# (re)installed into it whenever pyproject.toml is newer than .venv/.installed.

SHELL := /bin/bash
.DEFAULT_GOAL := help

# The interpreter that creates .venv (the project needs Python >= 3.11).
PYTHON ?= $(firstword $(shell command -v python3.11 python3.12 python3.13 python3 2>/dev/null) python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

# Extra arguments for pytest, e.g. make test PYTEST_ARGS="-k review -x"
PYTEST_ARGS ?=

# What `make test` gives the test suite. pytest-django creates and drops `test_q16`.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/q16
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
TEST_SECRET_KEY ?= test-secret-key-not-for-production
TEST_DATA_DIR ?= $(CURDIR)/var/test

.PHONY: help install run test lint bench bench-review bench-rescore-pg bench-indexing bench-workers bench-labels clean migrate worker web

help: ## List the targets
	@echo "Q16 Curator targets:"
	@grep -E '^[a-z][a-z_-]*:.*## ' $(MAKEFILE_LIST) \
		| awk 'BEGIN {FS = ":.*## "} {printf "  make %-16s %s\n", $$1, $$2}'

# --- Environment ------------------------------------------------------------------------

$(PY):
	@echo "[q16] creating the virtual environment in $(VENV) with $(PYTHON)"
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
		echo "[q16] $(PYTHON) is older than 3.11; run: make PYTHON=/path/to/python3.11 ..." >&2; \
		exit 1; }
	@$(PYTHON) -m venv $(VENV) || { \
		rm -rf $(VENV); \
		echo "[q16] '$(PYTHON) -m venv' failed. On Debian/Ubuntu: apt-get install python3-venv" >&2; \
		exit 1; }

$(STAMP): pyproject.toml | $(PY)
	@echo "[q16] installing the project into $(VENV) (pip install -e '.[dev]')"
	$(PIP) install -e '.[dev]'
	@touch $@

install: $(STAMP) ## Create .venv and install the project (skipped when up to date)

# --- Running ------------------------------------------------------------------------------

run: $(STAMP) ## Start everything on http://127.0.0.1:8000 (Ctrl-C stops it)
	$(PY) -m stack

migrate: $(STAMP) ## Apply database migrations to the embedded (or DATABASE_URL) database
	$(PY) -m stack manage migrate --noinput

# The queues `make worker` takes (comma-separated): gpu (the scoring chunks), cpu (everything
# else) or both, the default. E.g. make worker WORKER_QUEUES=gpu on a GPU machine; the
# environment's Q16_WORKER_QUEUES counts when this is unset.
WORKER_QUEUES ?=

worker: $(STAMP) ## Run one Celery worker alone (REDIS_URL, or a running `make run`'s Redis; WORKER_QUEUES=gpu|cpu)
	$(if $(WORKER_QUEUES),Q16_WORKER_QUEUES='$(WORKER_QUEUES)' )$(PY) -m stack worker

web: $(STAMP) ## Run the web server alone (gunicorn on Q16_HOST:Q16_PORT)
	$(PY) -m stack web

# --- Checks -----------------------------------------------------------------------------------

test: export DATABASE_URL := $(TEST_DATABASE_URL)
test: export REDIS_URL := $(TEST_REDIS_URL)
test: export SECRET_KEY := $(TEST_SECRET_KEY)
test: export Q16_DATA_DIR := $(TEST_DATA_DIR)
test: $(STAMP) ## Start PostgreSQL/Redis/Chromium if needed and run pytest (PYTEST_ARGS=...)
	@scripts/ensure_test_services.sh
	@mkdir -p "$(TEST_DATA_DIR)"
	$(PY) -m pytest $(PYTEST_ARGS)

# makemigrations reads the test settings but needs no running database: an empty in-memory
# SQLite one answers its history check (lint runs before `make test` starts PostgreSQL).
lint: $(STAMP) ## ruff check and format, mypy (pyproject.toml), no model change without a migration
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	SECRET_KEY='$(TEST_SECRET_KEY)' REDIS_URL='$(TEST_REDIS_URL)' Q16_DATA_DIR='$(TEST_DATA_DIR)' \
		DATABASE_URL='sqlite://:memory:' $(PY) manage.py makemigrations --check --dry-run

# Extra arguments for the benchmarks, e.g. make bench BENCH_ARGS=--quick
BENCH_ARGS ?=

bench: $(STAMP) ## Run the benchmarks (python -m bench; table + bench/results/<time>.json)
	$(PY) -m bench $(BENCH_ARGS)

bench-review: $(STAMP) ## Review latency at 1M images on PostgreSQL (python -m bench.review_latency)
	$(PY) -m bench.review_latency $(BENCH_ARGS)

bench-rescore-pg: $(STAMP) ## Rescore 100,000 and 1,000,000 from shards on PostgreSQL, two processes (python -m bench.rescore_pg)
	$(PY) -m bench.rescore_pg $(BENCH_ARGS)

bench-indexing: $(STAMP) ## Indexing files/s from a folder, local shards and an S3 server (python -m bench.indexing)
	$(PY) -m bench.indexing $(BENCH_ARGS)

bench-workers: $(STAMP) ## Scoring throughput with one and two Celery worker processes (python -m bench.scoring_workers)
	$(PY) -m bench.scoring_workers $(BENCH_ARGS)

bench-labels: $(STAMP) ## Verdicts per queue strategy through the real services (python -m bench.labels)
	$(PY) -m bench.labels $(BENCH_ARGS)

# --- Cleaning ---------------------------------------------------------------------------------

clean: ## Delete var/ (embedded database, media, Redis socket, secret key, test data)
	rm -rf var/
