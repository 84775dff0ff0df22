# claimwatch developer entry points. Prerequisites: python3 (>= 3.11) with venv, make.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: install demo test test-fast lint lint-imports typecheck migrations-check clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build (otherwise sentence-transformers pulls a multi-GB CUDA build)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev,browse]"
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/claimwatch demo

test: install
	$(BIN)/python -m pytest

# the tests that load no model and run no crawl (a few minutes)
test-fast: install
	$(BIN)/python -m pytest -m "not slow"

lint: install lint-imports typecheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy over the pure layers, pipelines/ and db/ ([tool.mypy] in pyproject.toml)
typecheck: install
	$(BIN)/mypy

# import direction and no import cycles: the contracts in pyproject.toml ([tool.importlinter])
lint-imports: install
	$(BIN)/lint-imports

# alembic upgrade head + alembic check (models and migrations agree) on SQLite, and on PostgreSQL
# (PG_ADMIN_URL: a server where a scratch database may be created and dropped; empty: SQLite only)
PG_ADMIN_URL ?= postgresql://postgres@127.0.0.1:5432/test
migrations-check: install
	$(BIN)/python scripts/check_migrations.py $(if $(PG_ADMIN_URL),--postgres $(PG_ADMIN_URL))

clean:
	rm -rf $(VENV) claimwatch-demo.db* crawls .pytest_cache
