# Two commands for users: `make run` (build the demo warehouse) and `make test`.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test bench lint format demo-data clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $(STAMP)

## Build the demo warehouse and its reports.
run: $(STAMP)
	$(BIN)/hpd run

## Lint, then every test: dbt unit and data tests and pytest.
test: $(STAMP)
	$(BIN)/ruff check python tests
	$(BIN)/ruff format --check python tests
	$(BIN)/pytest

## Benchmark hpd run against a hand-written DuckDB script and pandas at 1k-1M
## subjects (prints a table; writes build/bench/bench.csv and bench.png).
## Options: make bench BENCH_ARGS="--sizes 1000,10000 --repeat 3".
bench: $(STAMP)
	$(BIN)/python -m hpd.bench $(BENCH_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check python tests

format: $(STAMP)
	$(BIN)/ruff format python tests
	$(BIN)/ruff check --fix python tests

## Regenerate the demo cohort's SDTM files from their declaration.
demo-data: $(STAMP)
	$(BIN)/python -m hpd.demo_cohort

clean:
	rm -rf build target logs
