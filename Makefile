# Everything runs in a local virtualenv (.venv) that these targets create on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# Demo settings (override on the command line: make demo EPOCHS=5 RULE=dfa LANES=8)
EPOCHS ?= 3
RULE   ?= erbp
SEED   ?= 0
LANES  ?= 4
BACKEND ?= virtual
# Board for make bitstream / make prog: icebreaker, ulx3s-85f or orangecrab-25f
BOARD  ?= icebreaker

.PHONY: help demo demo-golden test test-slow lint bench bitstream prog clean distclean

help:
	@echo "make demo      train the digits network on the virtual board (the RTL in Verilator, over"
	@echo "               a simulated UART; rule $(RULE), $(EPOCHS) epochs, P=$(LANES)), plots in runs/demo"
	@echo "make demo-golden  the same on the NumPy golden model (10 epochs, about a minute)"
	@echo "make test      run the test suite (fast tier; what CI runs)"
	@echo "make test-slow also run the slow tests"
	@echo "make lint      import-linter (imports go one way) and ruff; make test runs both"
	@echo "make bench     measure accuracy and speed, write bench/results.md and .json"
	@echo "make bitstream BOARD=icebreaker|ulx3s-85f|orangecrab-25f"
	@echo "               build with Yosys + nextpnr (YoWASP); bitstream and report.json in build/boards/"
	@echo "make prog BOARD=...   program the board with openFPGALoader"
	@echo "make clean     remove run outputs; make distclean also removes $(VENV)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,boards]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m sw train --backend $(BACKEND) --lanes $(LANES) --dataset digits \
	    --rule $(RULE) --epochs $(EPOCHS) --seed $(SEED) --checkpoint runs/demo/checkpoint.npz \
	    --json runs/demo/results.json --plots runs/demo/plots

demo-golden: $(STAMP)
	$(BIN)/python -m sw train --backend golden --dataset digits --rule $(RULE) \
	    --epochs 10 --seed $(SEED) --checkpoint runs/demo-golden/checkpoint.npz \
	    --json runs/demo-golden/results.json --plots runs/demo-golden/plots

test: $(STAMP) lint
	$(BIN)/python -m pytest -q -m "not slow"

# imports go one way (pyproject.toml [tool.importlinter]); ruff's rule set is in pyproject.toml
lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff check .

test-slow: $(STAMP) lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench.run

bitstream: $(STAMP)
	$(BIN)/python -m boards.build --board $(BOARD)

prog: $(STAMP)
	$(BIN)/python -m boards.build --board $(BOARD) --prog-only

clean:
	rm -rf runs .pytest_cache

distclean: clean
	rm -rf $(VENV) *.egg-info
