# cxrmask: two commands on a fresh machine (Python 3.11 and pip are all it needs).
#   make demo   set up .venv, run the whole pipeline on the embedded demo (offline, CPU, minutes)
#   make test   set up .venv, run the test suite

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_RESULTS := results/demo_run

.PHONY: setup demo test test-fast test-alone mutate lint format bench dry-run clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] < (3, 11) and "cxrmask needs Python >= 3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/snakemake --profile profiles/local --configfile config/demo.yaml
	$(BIN)/snakemake --cores 1 --configfile config/demo.yaml --report $(DEMO_RESULTS)/report.html
	@echo
	@echo "Demo finished."
	@echo "  report      $(DEMO_RESULTS)/report.md  (HTML with figures: $(DEMO_RESULTS)/report.html)"
	@echo "  figures     $(DEMO_RESULTS)/figures/"
	@echo "  tables      $(DEMO_RESULTS)/tables/auroc.csv, $(DEMO_RESULTS)/tables/delong.csv"
	@echo "  MLflow      sqlite:///$(abspath $(DEMO_RESULTS))/mlflow/mlflow.db"
	@echo "  browse it:  $(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath $(DEMO_RESULTS))/mlflow/mlflow.db"

# The suite on pytest-xdist workers, one per core up to 4, a test module to a worker, in the order
# tests/conftest.py gives (long modules first); PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= auto
PARALLEL = -n $(PYTEST_WORKERS) --maxprocesses 4 --dist loadfile --no-loadscope-reorder
test: $(STAMP)
	$(BIN)/pytest $(PARALLEL)

test-fast: $(STAMP)
	$(BIN)/pytest $(PARALLEL) -m "not slow"

# Test modules one at a time, each in its own process at 1 and 2 threads, in random orders: a test that
# leans on another module's side effects or on a thread count fails here. ALONE='--sample 0' runs them all.
ALONE ?= --sample 6
test-alone: $(STAMP)
	$(BIN)/python tests/alone.py $(ALONE)

# Mutation testing (pyproject.toml [tool.mutmut] names the modules and their tests); not part of `make test`.
# Mutants run in processes forked from one that ran torch: one OpenMP thread keeps a fork from deadlocking.
# MUTANTS narrows the run to some mutants, e.g. MUTANTS='cxrmask.stats*'; `mutmut show NAME` shows one.
mutate: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/mutmut run $(foreach pattern,$(MUTANTS),'$(pattern)')
	$(BIN)/mutmut results

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check Snakefile workflow
	$(BIN)/snakemake --lint --configfile config/demo.yaml

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/snakefmt Snakefile workflow

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_delong.py
	$(BIN)/python benchmarks/bench_download.py
	$(BIN)/python benchmarks/bench_dilation.py
	$(BIN)/python benchmarks/bench_cache.py
	$(BIN)/python benchmarks/bench_postprocess.py
	$(BIN)/python benchmarks/bench_segment.py
	$(BIN)/python benchmarks/bench_cpu_bf16.py
	$(BIN)/python benchmarks/bench_chexmask.py
	$(BIN)/python benchmarks/bench_curation.py

dry-run: $(STAMP)
	$(BIN)/snakemake -n --quiet rules

clean:
	rm -rf $(DEMO_RESULTS) .snakemake mutants
