# wirestamp: `make demo` and `make test` set everything up in .venv first (idempotent, quick
# when already done). PYTHON picks the interpreter the venv is made from (3.11 or newer).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench docs netlist-sim clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "wirestamp needs Python 3.11 or newer")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

demo: setup
	$(BIN)/wirestamp demo --out out/demo

test: setup
	$(BIN)/python -m pytest -n auto -rx

bench: setup
	$(BIN)/python benchmarks/tx_linerate.py
	$(BIN)/python benchmarks/virtual_board.py

# The flashed Colorlight netlist (after synth_ecp5) in Verilator, a loopback through its pins.
netlist-sim: setup
	$(BIN)/python -m pytest tests/test_netlist.py -v

docs: setup
	$(BIN)/wirestamp regs > docs/registers.md

clean:
	rm -rf build out .pytest_cache
