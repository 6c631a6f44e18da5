# hotline — the two commands: `make run` and `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint bench bench-ussd bench-ivr bench-balance bench-scale setup system-deps clean

## setup: create the virtualenv and install hotline with its dev tools
setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory system-deps
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

## system-deps: Debian packages the service and its tests need (redis-server for the test fixture)
system-deps:
	@command -v redis-server >/dev/null 2>&1 || { \
	  echo "installing redis-server (the tests start a private one)"; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	  else echo "please install redis-server (e.g. sudo apt-get install redis-server)"; exit 1; fi; }
	@command -v chromium >/dev/null 2>&1 && command -v dot >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "Noto Sans CJK" || { \
	  echo "installing chromium, graphviz, fonts-noto-cjk (simulator browser tests, flows graph --format svg)"; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium graphviz fonts-noto-cjk; \
	  else echo "please install chromium graphviz fonts-noto-cjk (the browser tests skip without chromium)"; fi; }

## run: start the service on 127.0.0.1:8080 with embedded defaults (web phone at /simulator)
run: setup
	HOTLINE_SIMULATOR=true $(BIN)/hotline serve --host 127.0.0.1 --port 8080

## test: set up and run the whole test suite
test: system-deps setup
	$(BIN)/pytest

## lint: ruff + mypy
lint: setup
	$(BIN)/ruff check .
	$(BIN)/mypy

## bench: the load scripts, one after another (figures: docs/benchmarks.md; a few minutes)
bench: bench-ussd bench-ivr bench-balance bench-scale

bench-ussd: setup
	$(BIN)/python bench/ussd.py --client raw

bench-ivr: setup
	$(BIN)/python bench/ivr.py

bench-balance: setup
	$(BIN)/python bench/balance.py

## bench-scale: 1 vs 2 workers, a worker killed mid-load, a short soak (--soak 300 for 5 minutes)
bench-scale: setup
	$(BIN)/python bench/scale.py

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
