# Two commands a newcomer needs: `make run` and `make test`. Both build .venv when missing.
# The packages run from this checkout (PYTHONPATH), so there is no install step to go stale.
# token_verifier/ is also its own distribution: the lock installs it in editable mode from
# ./token_verifier, which is the very directory PYTHONPATH finds, so both name the same files.
export PYTHONPATH := $(CURDIR)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run run-edge test lint bench test-fast fmt lock clean migrate rotate-keys

$(STAMP): requirements-dev.lock pyproject.toml token_verifier/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.lock
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m gateway.stack

# The same stack with nginx (the production edge) on port 8000 in the Python gateway's place.
run-edge: $(STAMP)
	$(BIN)/python -m gateway.stack --edge

test: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider -m "not browser" $(PYTEST_ARGS)
	$(BIN)/python -m pytest -p no:cacheprovider -m browser $(PYTEST_ARGS) || test $$? -eq 5

test-fast: $(STAMP)
	$(BIN)/python -m pytest -p no:cacheprovider -m "not slow and not browser" -x $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/lint-imports

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m tests.bench

migrate: $(STAMP)
	$(BIN)/python -m auth_service migrate
	$(BIN)/python -m todo_service migrate

rotate-keys: $(STAMP)
	$(BIN)/python -m auth_service rotate-keys

# Regenerate the lock files after changing pyproject.toml (needs network access to PyPI).
lock: $(STAMP)
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml -o requirements.lock --python-version 3.11 -q
	$(BIN)/uv pip compile pyproject.toml --extra dev -o requirements-dev.lock --python-version 3.11 -q

clean:
	rm -rf $(VENV) .data .mypy_cache .ruff_cache
