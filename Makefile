# Set-up (`make install`) and the two everyday commands: `make demo` (the whole study on embedded data), `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
CORES ?= 2

.PHONY: install demo test lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# .venv with privfair (editable), Snakemake, the SLURM plugin and the test tools; `make demo` and `make test` do it too.
install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/snakemake --cores $(CORES)

# One pytest worker per core (pytest-xdist): the end-to-end workflow tests are long and run side by side.
test: $(VENV)/.installed
	$(BIN)/python -m pytest -n $(CORES)

# Style is checked, never fixed, here: `ruff format . && snakefmt .` fixes what `make lint` finds.
lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/snakefmt --check .
	$(BIN)/snakemake --lint

clean:
	rm -rf results .snakemake
