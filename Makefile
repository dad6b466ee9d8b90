# Set-up and everyday commands. `make test` and `make demo` work on a fresh machine: they create
# .venv and install the pinned dependencies (constraints.txt) first.
VENV ?= .venv
PY := $(VENV)/bin/python
# CIFAR-10 for the demo and benchmarks: this checkout's shared copy if present, else
# $KEYLESS_DATA, else `keyless train` downloads it (checksum verified).
DATA ?= $(wildcard ../shared/data/cifar10/cifar10.npz)
DATA_FLAG := $(if $(DATA),--data $(DATA),)

.PHONY: install test lint demo bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

test: install lint
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# The main job in a few minutes on 2 CPU cores: the owner encrypts CIFAR-10 with independent
# keys, a CPU-sized fastnet trains on the ciphertexts (key-invariant stem), and the model is
# tested on plain images and on images encrypted with fresh keys; a few sentences tell how it
# went. The same training by hand: keyless train --model fastnet --widths 32,64,128 --epochs 3
# --keys independent --stem invariant --seed 0 --out demo/run. A finished run is only read back.
demo: install
	$(VENV)/bin/keyless demo $(DATA_FLAG) --out demo/encryption_grid.png --train demo/run

bench: install
	$(PY) benchmarks/speed/bench_cipher.py $(DATA_FLAG)

clean:
	rm -rf $(VENV) demo .pytest_cache
