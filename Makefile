# Rapport: every target creates .venv from the lock file when it is missing or stale.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench install lock clean

$(STAMP): requirements.lock requirements-dev.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found (Rapport needs Python 3.11)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock -r requirements-dev.lock
	# compat mode: a plain path entry that mypy and subprocesses see; PYTHONWARNINGS silences
	# setuptools' 14-line notice that the mode is transitional, which is not the user's business.
	PYTHONWARNINGS=ignore $(BIN)/python -m pip install --quiet --no-deps -e . --config-settings editable_mode=compat
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/rapport demo

test: $(STAMP)
	$(BIN)/python -m pytest -q --durations=15

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy store nlu analytics scheduler bot fakeapi demo cli dashboard ingest

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

# requirements.lock: what an operator's install needs; requirements-dev.lock: the test and lint
# tools and the optional Spark engine on top, pinned to the same versions (`-c requirements.lock`).
lock:
	$(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url -o requirements.lock pyproject.toml
	$(BIN)/pip-compile --quiet --extra dev --extra spark --strip-extras --no-emit-index-url -c requirements.lock -o requirements-dev.lock pyproject.toml

clean:
	rm -rf $(VENV) var demo-output .pytest_cache .mypy_cache .ruff_cache
