# The two commands of the README:
#   make run   set up everything and start the helpdesk with demo data on http://127.0.0.1:5000
#   make test  set up everything the tests need and run ruff, mypy and the whole test suite
# Both work on a fresh Debian machine with Python 3.11; as root they install missing Debian
# packages themselves.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000
# Debian packages the test suite starts for real (see docs/operations.md).
TEST_DEBS := dovecot-imapd postgresql redis-server chromium fonts-noto-core
PYTEST_ARGS ?=

.PHONY: run test lint typecheck pytest venv deps test-deps system-deps translations bytecode clean bench

run: deps translations bytecode
	@$(BIN)/helpdesk init
	@$(BIN)/helpdesk demo --if-empty
	@echo ""
	@echo "  Helpdesk:        http://$(HOST):$(PORT)/"
	@echo "  Sign in (agent): agent@example.com / demo-password"
	@echo "  Sign in (admin): admin@example.com / demo-password"
	@echo "  Customer portal: http://$(HOST):$(PORT)/portal/"
	@echo "  Outgoing mail is written to instance/mail-outbox/ until SMTP is configured."
	@echo "  Times are shown in Asia/Dhaka (HELPDESK_TIMEZONE; each agent can pick theirs)."
	@echo ""
	@HELPDESK_TIMEZONE=$${HELPDESK_TIMEZONE:-Asia/Dhaka} $(BIN)/helpdesk serve --host $(HOST) --port $(PORT)

test: test-deps translations bytecode lint typecheck pytest

# Compiled once here: with PYTHONDONTWRITEBYTECODE set (containers often do), every command
# would compile the project's modules again (~0.3 s of each one-off command's start-up).
bytecode:
	@$(BIN)/python -m compileall -q helpdesk channels kb

lint:
	$(BIN)/ruff check .
	$(BIN)/lint-imports

typecheck:
	$(BIN)/mypy

pytest:
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# --- setup ------------------------------------------------------------------------------------

$(BIN)/python:
	@$(PYTHON) -c 'import ensurepip' 2>/dev/null || $(MAKE) --no-print-directory python-venv-deb
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

.PHONY: python-venv-deb
python-venv-deb:
	@if [ "$$(id -u)" = 0 ]; then \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv; \
	else echo "python venv support is missing: sudo apt-get install python3-venv" >&2; exit 1; fi

venv: $(BIN)/python

$(VENV)/.deps: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.test-deps: $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.deps

deps: $(VENV)/.deps

test-deps: system-deps $(VENV)/.test-deps

# Installs what the real-server tests start, when missing and when we are root (CI is root).
# Not root and missing: say which packages, and let the tests fail with the same message.
system-deps:
	@missing=""; \
	command -v dovecot >/dev/null 2>&1 || [ -x /usr/sbin/dovecot ] || missing="$$missing dovecot-imapd"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -d /usr/share/fonts/truetype/noto ] || missing="$$missing fonts-noto-core"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  else \
	    echo "Missing Debian packages:$$missing (run: sudo apt-get install$$missing)" >&2; \
	  fi; \
	fi

translations: $(VENV)/.deps
	@$(BIN)/pybabel compile -d helpdesk/translations -D messages

# Update the catalogs after changing user-facing strings.
.PHONY: messages
messages: $(VENV)/.deps
	$(BIN)/pybabel extract -F babel.cfg -k _l -k _n:1,2 -o helpdesk/translations/messages.pot .
	$(BIN)/pybabel update -i helpdesk/translations/messages.pot -d helpdesk/translations -D messages --no-fuzzy-matching

bench: $(VENV)/.test-deps
	$(BIN)/python bench/queue.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
