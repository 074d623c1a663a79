# modelyard — the two commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
PIP_INSTALL := $(PIP) install --quiet --disable-pip-version-check -c constraints.txt

.PHONY: run test lint typecheck audit browser pytest bench lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The service with the ML extra (torch, transformers, …): what `make run` needs.
$(VENV)/.run-installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP_INSTALL) -e '.[ml]'
	touch $@

# The test tools and the ML extra (the local-model tests run tiny real models).
$(VENV)/.test-installed: $(BIN)/python pyproject.toml constraints.txt
	$(PIP_INSTALL) -e '.[ml,dev]'
	touch $@

run: $(VENV)/.run-installed
	$(BIN)/modelyard setup
	$(BIN)/modelyard serve

test: $(VENV)/.test-installed lint typecheck audit pytest

lint: $(VENV)/.test-installed
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(VENV)/.test-installed
	$(BIN)/mypy

# Security: bandit on the code (skips explained in pyproject.toml); pip-audit on the
# installed packages: fails on any known vulnerability, and also when it could look up
# (almost) nothing, e.g. without network (tools/pip_audit_gate.py says which and why).
# This machine's package mirror has no vulnerability data, so by default a run that could
# check nothing is a loud warning, not a failure; AUDIT_UNCHECKED_OK=0 makes it fail.
AUDIT_REPORT ?= $(VENV)/pip-audit.json
AUDIT_UNCHECKED_OK ?= 1
audit: $(VENV)/.test-installed
	$(BIN)/bandit -c pyproject.toml -r src/modelyard -q
	@rm -f $(AUDIT_REPORT); status=0; \
	$(BIN)/pip-audit --progress-spinner off --local --skip-editable -f json -o $(AUDIT_REPORT) \
	  || status=$$?; \
	$(BIN)/python tools/pip_audit_gate.py $(AUDIT_REPORT) $$status \
	  $$( [ "$(AUDIT_UNCHECKED_OK)" = 1 ] && echo --unchecked-ok )

# The browser tests drive Debian's chromium; installed when missing (root or sudo).
browser:
	@command -v chromium >/dev/null || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium; }
	@[ -f tests/web/axe/node_modules/axe-core/axe.min.js ] || \
	  npm ci --prefix tests/web/axe --no-audit --no-fund --silent

# The suite over PYTEST_WORKERS processes (pytest-xdist, whole files per process), then
# the tests marked `serial` (they time servers under load) alone.
PYTEST_WORKERS ?= 2
pytest: $(VENV)/.test-installed browser
	$(BIN)/pytest -n $(PYTEST_WORKERS) --dist loadfile -m "not serial"
	$(BIN)/pytest -m serial

bench: $(VENV)/.test-installed
	$(BIN)/python -m bench.run $(BENCH_ARGS)

# Regenerate the lock after changing pyproject.toml's dependencies.
lock: $(BIN)/python
	$(PIP) install --quiet -e '.[ml,dev]'
	$(PIP) freeze --exclude-editable | grep -v '^-e ' | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' > constraints.txt

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
