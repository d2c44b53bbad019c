# Two commands that work on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: venv test test-fast test-floors lint demo bench clean

# (re)install when the venv is missing or the dependencies changed
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing lssat-search and its dependencies into $(VENV) (first time: a few minutes)..."
	$(PY) -m pip install -q -e ".[dev]"
	@touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

# the whole suite runs serially: the two-worker run (-n 2, 14.4 min on 2 quiet cores) made a
# Ray Train test flaky under the other worker's load (tests/conftest.py, docs/architecture.md)
test: $(STAMP) lint
	$(VENV)/bin/pytest --durations=15

# two workers on the two cores (pytest-xdist); a test module stays on one worker
test-fast: $(STAMP) lint
	$(VENV)/bin/pytest -n 2 --dist loadfile -m "not slow"

# the declared floors, exactly (constraints-floors.txt): run at least once per dependency change
test-floors:
	@test -x .venv-floors/bin/python || $(PYTHON) -m venv .venv-floors
	.venv-floors/bin/python -m pip install -q -c constraints-floors.txt -e ".[dev]"
	.venv-floors/bin/pytest -m "not slow"

demo: $(STAMP)
	$(PY) -m search.demo

bench: $(STAMP)
	$(PY) bench/descriptors.py
	$(PY) bench/trial.py
	$(PY) bench/data.py
	$(PY) bench/search_overhead.py

clean:
	rm -rf $(VENV) .venv-floors .pytest_cache .ruff_cache *.egg-info
