# The gateway's developer commands. Everything installs into the repository (.venv/,
# .cache/, tools/kafka-broker/libs/), all of it ignored by git and rebuilt on demand.
# Prerequisites: Python 3.11+, Java 17+, Maven, Go and Node.js on the PATH.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .cache/uv/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

HTTP_PORT ?= 8080
SIM_PORT ?= 8099
DEV_TOKEN ?= dev-token
# Development-only OC key pair shared by the simulator and the gateway in `make run`.
DEV_ENV := GATEWAY_OC_CLIENT_KEY=dev-client-key GATEWAY_OC_SECRET_KEY=dev-secret-key

.PHONY: help
help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv .cache/uv
	.cache/uv/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(BIN)/gateway: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --all-groups
	@touch $@

.PHONY: venv
venv: $(BIN)/gateway ## Create .venv/ from the lock file

.PHONY: run
run: venv ## Run the gateway on the embedded log, with the OC simulator standing in for OC
	@mkdir -p .run
	@$(DEV_ENV) $(BIN)/gateway simulate serve --port $(SIM_PORT) > .run/simulator.log 2>&1 & \
	  sim=$$!; trap 'kill $$sim 2>/dev/null' EXIT; \
	  for _ in $$(seq 1 100); do curl -sf http://127.0.0.1:$(SIM_PORT)/_sim/stats >/dev/null && break; sleep 0.1; done; \
	  echo "OC simulator:  http://127.0.0.1:$(SIM_PORT)  (log: .run/simulator.log)"; \
	  echo "Callback URL:  http://127.0.0.1:$(HTTP_PORT)/webhooks/oc/$(DEV_TOKEN)/outbound"; \
	  echo "Send a sample: curl -sS -H 'content-type: application/json' --data-binary @tools/sample-callback.json http://127.0.0.1:$(HTTP_PORT)/webhooks/oc/$(DEV_TOKEN)/outbound"; \
	  echo "More, from OC: $(DEV_ENV) $(BIN)/gateway simulate send --simulator http://127.0.0.1:$(SIM_PORT) --target http://127.0.0.1:$(HTTP_PORT)/webhooks/oc/$(DEV_TOKEN)/{kind} --count 20"; \
	  echo "Events:        $(BIN)/gateway events tail --follow"; \
	  $(DEV_ENV) GATEWAY_PATH_TOKENS=$(DEV_TOKEN) GATEWAY_VERIFY_OC_SIGNATURE=false \
	  GATEWAY_OC_BASE_URL=http://127.0.0.1:$(SIM_PORT) GATEWAY_OC_REFRESH_TOKEN=sim-refresh-token \
	  GATEWAY_HTTP_PORT=$(HTTP_PORT) $(BIN)/gateway serve

.PHONY: test
test: venv ## Run every check: format, lint, types and the whole test suite (starts Kafka itself)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/pytest

.PHONY: fmt
fmt: venv ## Format and auto-fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

.PHONY: kafka
kafka: venv ## Start a local Kafka broker in the background; prints BOOTSTRAP=... last
	@$(BIN)/python -m tools.kafka_broker start

.PHONY: kafka-stop
kafka-stop: ## Stop the broker `make kafka` started
	@$(PYTHON) -m tools.kafka_broker stop

.PHONY: generate
generate: venv ## Regenerate what is derived from the code: event schemas, AsyncAPI, settings docs
	$(BIN)/python -m schemas.generate
	$(BIN)/gateway settings --update README.md
	$(BIN)/python -m tests.deploy.settings_schema --write

.PHONY: bench
bench: venv ## Benchmark both logs against the HTTP and broker ceilings (bench/results/)
	$(BIN)/python -m bench bench $(BENCH_ARGS)

.PHONY: faults
faults: venv ## Fault runs under load, each audited by an independent consumer (bench/results/)
	$(BIN)/python -m bench faults $(BENCH_ARGS)

.PHONY: bench-trace
bench-trace: venv ## gateway trace of one order among 1,000,000 raw records on a real broker (bench/results/)
	$(BIN)/python -m bench trace $(BENCH_ARGS)

.PHONY: bench-smoke
bench-smoke: venv ## The short benchmark and fault run that the test suite runs
	$(BIN)/pytest tests/bench -q

.PHONY: clean
clean: ## Remove environments, caches and local state
	rm -rf .venv .cache .run .data tools/kafka-broker/libs node_modules
