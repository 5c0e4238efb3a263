# Two commands on a fresh clone: `make run` and `make test`. Both install first.
PYTHON ?= python3
UV_VERSION := 0.13.9
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
export UV_PROJECT_ENVIRONMENT := $(CURDIR)/$(VENV)

.PHONY: install run test lint typecheck contracts check bench clean

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --locked --all-groups
	@touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/congocart serve --host "$${HOST:-127.0.0.1}" --port "$${PORT:-8000}"

# Under CI=true the tests run against the machine's PostgreSQL and Redis (.ci/services).
test: install
	@if [ "$$CI" = "true" ]; then . ./.ci/services; fi; $(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check src tests bench alembic
	$(BIN)/ruff format --check src tests bench alembic

typecheck: install
	$(BIN)/mypy

contracts: install
	$(BIN)/lint-imports

check: lint typecheck contracts test

bench: install
	$(BIN)/congocart bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
