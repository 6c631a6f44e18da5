# hotline — the two commands: `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-ussd bench-ivr bench-balance bench-scale bench-sms setup system-deps clean

## setup: create the virtualenv and install hotline with its dev tools
setup: $(STAMP)

# setup.py compiles the USSD request path with mypyc: an edit of one of those modules
# builds them again (Python would import the old compiled module before the new source).
COMPILED := $(shell sed -n 's/^    "\(.*\.py\)",$$/\1/p' setup.py)

$(STAMP): pyproject.toml setup.py $(COMPILED)
	@$(MAKE) --no-print-directory system-deps
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

## system-deps: Debian packages the service, its tests and the docs' commands need, as
## `command:package` (redis-server for the test fixture, chromium for the browser tests,
## dot for `flows graph --format svg`, curl for the README's requests, openssl for the TLS
## tests, bearerbox/smsbox and Kannel's fakesmsc test SMSC for the SMS channel's tests);
## cc (gcc) for setup.py's mypyc build of the request path (without it: pure Python);
## installed when run as root, otherwise named. tests/tools/test_docs_commands.py
## keeps this list and the commands in README.md and docs/ in step.
SYSTEM_DEPS := cc:gcc redis-server:redis-server chromium:chromium dot:graphviz curl:curl openssl:openssl bearerbox:kannel smsbox:kannel /usr/lib/kannel/test/fakesmsc:kannel-extras osmo-hlr:osmo-hlr prometheus:prometheus nats-server:nats-server
system-deps:
	@missing=""; \
	for dep in $(SYSTEM_DEPS); do \
	  command -v "$${dep%%:*}" >/dev/null 2>&1 || missing="$$missing $${dep##*:}"; \
	done; \
	fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || missing="$$missing fonts-noto-cjk"; \
	[ -z "$$missing" ] && exit 0; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
	  echo "please install$$missing (e.g. sudo apt-get install$$missing)"; \
	  command -v redis-server >/dev/null 2>&1 || exit 1; \
	fi

## run: start the service with embedded defaults (web phone at /simulator);
## `make run PORT=8081 HOST=0.0.0.0` listens elsewhere
HOST ?= 127.0.0.1
PORT ?= 8080
run: setup
	@echo "hotline on http://$(HOST):$(PORT)/simulator — the CLI in another shell: . $(VENV)/bin/activate; hotline ledger list"
	HOTLINE_SIMULATOR=true $(BIN)/hotline serve --host $(HOST) --port $(PORT)

## test: set up and run the whole test suite
test: system-deps setup
	$(BIN)/pytest

## lint: ruff (rules and formatting) + mypy
lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## bench: the load scripts, one after another (figures: docs/benchmarks.md; a few minutes)
bench: bench-ussd bench-ivr bench-balance bench-scale bench-sms

bench-ussd: setup
	$(BIN)/python bench/ussd.py --client raw

bench-ivr: setup
	$(BIN)/python bench/ivr.py

bench-sms: setup
	$(BIN)/python bench/sms.py

bench-balance: setup
	$(BIN)/python bench/balance.py

## bench-scale: 1 vs 2 workers, a worker killed mid-load, a short soak (--soak 300 for 5 minutes)
bench-scale: setup
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
