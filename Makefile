# make demo: virtual environment + install + the demo run.  make test: the test suite.
# TORCH_SPEC picks the torch build, e.g. make demo TORCH_SPEC="torch==2.5.1" for a CUDA machine.
PYTHON ?= python3
VENV ?= .venv
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin

.PHONY: install demo test lint clean

$(BIN)/taxodiff: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e ".[dev]"
	touch $(BIN)/taxodiff

install: $(BIN)/taxodiff

demo: install
	$(BIN)/taxodiff demo

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) runs
