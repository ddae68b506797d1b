# pushlane developer commands. Every install step lives here, so a fresh clone needs only `make`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 3000
export SAM_CLI_TELEMETRY := 0

.PHONY: install run test unit integration e2e infrastructure lint format admin-key clean

$(INSTALLED): requirements-dev.txt layers/push_core/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(INSTALLED)

## make run: the whole stack (moto as AWS, gateway, SQS pollers) on http://$(HOST):$(PORT), no Docker
run: install
	$(PY) -m local_stack --host $(HOST) --port $(PORT)

## make test: linters, then unit, integration, infrastructure and end-to-end suites
test: install lint
	$(PY) -m pytest -q

unit integration e2e infrastructure: install
	$(PY) -m pytest -q tests/$@

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/push_core functions local_stack tests

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## make admin-key: a new admin key and the SHA-256 to deploy with (AdminKeySha256)
admin-key: install
	$(PY) -c "from push_core.auth import new_admin_key; k = new_admin_key(); print('admin key:', k.token); print('AdminKeySha256:', k.sha256)"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam
