# Set-up, demo, tests.  Everything installs into .venv; torch is installed first, pinned, so nothing pulls another.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
TORCH  := torch==2.14.1 torchvision==0.29.1

.PHONY: install demo test lint bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	rm -f $(VENV)/.installed-*
	touch $@

demo: $(STAMP)
	$(BIN)/metamers demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/synthesis_overhead.py
	$(BIN)/python benchmarks/synthesis_options.py
	$(BIN)/python benchmarks/chunk_size.py
	$(BIN)/python benchmarks/null_speed.py
	$(BIN)/python benchmarks/peers.py
	$(BIN)/python benchmarks/peers.py --modality audio --iterations 60
	$(BIN)/python benchmarks/ray_workers.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
