# The two commands: `make run` (the app on embedded defaults) and `make test` (the whole suite).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test lint system-packages migrate clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

migrate: $(STAMP)
	@mkdir -p var
	$(PY) manage.py migrate --noinput

run: migrate
	$(PY) manage.py demo
	@echo "Serving on http://$(HOST):$(PORT)/  (API docs: http://$(HOST):$(PORT)/api/docs/)"
	DEBUG=$${DEBUG:-1} SII_SANDBOX_URL=$${SII_SANDBOX_URL:-http://$(HOST):$(PORT)/_sii} \
	  PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://$(HOST):$(PORT)} \
	  $(PY) manage.py runserver $(HOST):$(PORT)

# Debian packages the tests use: chromium drives the browser tests (Playwright cannot download
# its own here), xmlsec1 is a second, independent signature verifier, and poppler-utils'
# pdftoppm rasterises the printed documents so the tests can scan their barcodes; promtool and
# amtool check the monitoring files (deploy/prometheus, deploy/alertmanager); Dovecot is the IMAP
# server the exchange-mailbox tests start privately (tests/imapserver.py).
system-packages:
	@missing=""; \
	command -v chromium >/dev/null 2>&1 || missing="$$missing chromium"; \
	command -v xmlsec1 >/dev/null 2>&1 || missing="$$missing xmlsec1"; \
	command -v pdftoppm >/dev/null 2>&1 || missing="$$missing poppler-utils"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	command -v amtool >/dev/null 2>&1 || missing="$$missing prometheus-alertmanager"; \
	test -x /usr/sbin/dovecot || missing="$$missing dovecot-core dovecot-imapd"; \
	test -x /usr/sbin/pgbouncer || missing="$$missing pgbouncer"; \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

test: $(STAMP) system-packages lint
	$(PY) manage.py makemigrations --check --dry-run >/dev/null || { echo "Missing migrations: run manage.py makemigrations"; exit 1; }
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var/db.sqlite3 .pytest_cache .ruff_cache
