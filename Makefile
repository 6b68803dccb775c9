# Nanofat planner: `make run` serves the demo, `make test` runs every check.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
# Django 6.1 needs Python 3.12+; python3 may be older, so look for 3.13 / 3.12, pyenv included.
PYTHON ?= $(shell for v in 3.13 3.12; do \
	  p=$$(command -v python$$v 2>/dev/null) && "$$p" -c 'import sys' >/dev/null 2>&1 && { echo "$$p"; exit 0; }; \
	  for d in $$HOME/.pyenv/versions/$$v*/bin/python$$v /usr/local/bin/python$$v /usr/bin/python$$v; do \
	    [ -x "$$d" ] && { echo "$$d"; exit 0; }; done; \
	done)
# Debian packages. At run time: the Pango stack WeasyPrint draws with and libharfbuzz-subset0 for
# fast PDF font subsetting. For tests and benchmarks also: chromium for the browser tests,
# poppler-utils to look at PDFs, wrk for the HTTP benchmark.
DEB_RUNTIME := libharfbuzz-subset0 libpango-1.0-0 libpangoft2-1.0-0
DEB_PACKAGES := $(DEB_RUNTIME) chromium poppler-utils wrk
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: help run serve test lint format sysdeps sysdeps-runtime venv migrate bench clean

help:
	@echo "make run     set up and serve the demo on http://$(HOST):$(PORT) (SQLite)"
	@echo "make test    set up and run ruff and every test (honours DATABASE_URL)"
	@echo "make serve   serve under gunicorn as production does (needs SECRET_KEY, ALLOWED_HOSTS)"
	@echo "make bench   run the benchmarks in bench/"

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@test -n "$(PYTHON)" || { echo "No Python 3.12 or 3.13 found (install one, e.g. with pyenv)."; exit 1; }
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	@touch $@

venv: $(VENV)/.installed

sysdeps-runtime:
	@$(MAKE) --no-print-directory sysdeps DEB_PACKAGES="$(DEB_RUNTIME)"

sysdeps:
	@missing=$$(for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian packages: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "Missing Debian packages (install as root): $$missing"; exit 1; \
	  fi; \
	fi

migrate: venv
	DEBUG=1 $(PY) manage.py migrate --noinput
	DEBUG=1 $(PY) manage.py createcachetable
	DEBUG=1 $(PY) manage.py load_reference_data

run: venv sysdeps-runtime migrate
	DEBUG=1 $(PY) manage.py seed_demo
	DEBUG=1 $(PY) manage.py runserver $(HOST):$(PORT)

serve: venv sysdeps-runtime
	$(PY) manage.py migrate --noinput
	$(PY) manage.py createcachetable
	$(PY) manage.py load_reference_data
	$(PY) manage.py collectstatic --noinput
	$(VENV)/bin/gunicorn --config gunicorn.conf.py nanofat.wsgi

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: venv
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: venv sysdeps lint
	$(PY) -m pytest

# bench/load.py needs PostgreSQL (DATABASE_URL's server,
# default postgres://postgres@127.0.0.1:5432) and creates and drops a nanofat_bench database.
# Each runs even when one before it fails; make bench then fails at the end.
bench: venv sysdeps
	@status=0; \
	$(PY) bench/rules.py || status=1; \
	$(PY) bench/pdf.py || status=1; \
	$(PY) bench/load.py || status=1; \
	exit $$status

clean:
	rm -rf $(VENV) staticfiles test-artifacts .pytest_cache .ruff_cache
