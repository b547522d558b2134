# The README's two commands: `make demo` and `make test`. Both need only python3 and make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev

.PHONY: demo test lint bench reports clean help

help:
	@echo "make demo     set up .venv and run the flagship comparison report"
	@echo "make test     set up .venv with dev extras and run the whole test suite"
	@echo "make lint     ruff"
	@echo "make bench    run the benchmarks"
	@echo "make reports  regenerate the committed reports under reports/"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/simres run baseline

test: $(STAMP)
	$(VENV)/bin/ruff check simres tests benchmarks
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check simres tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_engine.py

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
