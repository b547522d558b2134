# The README's two commands: `make demo` and `make test`. Both need only python3 and make.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-dev
# botocore whose standard retry mode is still 2.0 (the aws_standard_2_0 preset), for its
# conformance test: installed beside the venv's current botocore, never over it, and
# imported only in a subprocess (tests/policies/conformance/test_botocore_legacy.py).
BOTOCORE_2_0     := $(shell cat tests/policies/conformance/legacy-botocore.txt)
BOTOCORE_2_0_DIR := $(VENV)/legacy/botocore-$(BOTOCORE_2_0)

.PHONY: demo test lint bench validate reports clean help legacy-libs

help:
	@echo "make demo     set up .venv and run the flagship comparison report"
	@echo "make test     set up .venv with dev extras and run the whole test suite"
	@echo "make lint     ruff"
	@echo "make bench    run the benchmarks"
	@echo "make validate queueing-theory validation (simres validate)"
	@echo "make reports  regenerate the committed reports under reports/"
	@echo "make legacy-libs  install the old library versions some conformance tests compare with"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(PY) $(BOTOCORE_2_0_DIR)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Order-only above, so an existing venv gets it too; its dependencies (jmespath,
# python-dateutil, urllib3) are the dev extras'. Installed into a temporary directory first
# so that a failed download leaves no directory that looks installed.
$(BOTOCORE_2_0_DIR): | $(PY)
	rm -rf $@.tmp
	$(PY) -m pip install --quiet --no-deps --target $@.tmp botocore==$(BOTOCORE_2_0)
	mv $@.tmp $@

legacy-libs: $(BOTOCORE_2_0_DIR)

# The flagship comparison: a 4 s burst tips naive retries into a retry storm they never
# leave; budgets, cancellation, a bounded queue or lower load recover.
demo: $(STAMP)
	$(VENV)/bin/simres run baseline --quiet
	@echo
	$(VENV)/bin/simres report retry-storm-metastable --reps 5 --reference naive --out reports/demo --quiet
	@echo
	@echo "Demo report: $(CURDIR)/reports/demo/index.html (open it in a browser; it needs no network)"

# One committed report per flagship scenario; regenerating is deterministic.
FLAGSHIPS := aws-backoff-jitter thundering-herd-after-partition slow-dependency-bulkhead \
             dependency-outage-breaker priority-shedding-overload brooker-retries-independent-failures
reports: $(STAMP)
	$(VENV)/bin/simres report retry-storm-metastable --reps 5 --reference naive --out reports/demo --quiet
	for s in $(FLAGSHIPS); do $(VENV)/bin/simres report $$s --reps 5 --out reports/$$s --quiet || exit 1; done

test: $(STAMP)
	$(VENV)/bin/ruff check simres tests benchmarks
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check simres tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_workloads.py
	$(PY) benchmarks/bench_memory.py
	$(PY) benchmarks/bench_engine.py
	$(PY) benchmarks/bench_sweep.py

validate: $(STAMP)
	$(VENV)/bin/simres validate

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
