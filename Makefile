# guitarlab: two commands for a newcomer, `make demo` and `make test`.
VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.guitarlab-installed
DEMO    ?= demo

.PHONY: install demo test bench lint format clean hf-check

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/guitarlab demo --out $(DEMO)

# CI runs this (.ci/run): the style checks first (ruff, from the dev extra), then every test,
# tests/test_layering.py among them (the one-way import rule)
test: lint
	$(PY) -m pytest -q -p no:cacheprovider

# the export opened with datasets 3.x (the hf extra) and with the newest datasets, without
# torch, in .venv-hf-new (the test makes it once from PyPI; `make test` runs it too)
hf-check: $(STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/test_export_hf.py

bench: $(STAMP)
	$(PY) -m benchmarks

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .venv-hf-new $(DEMO) .pytest_cache .ruff_cache *.egg-info
