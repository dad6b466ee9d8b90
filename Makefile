# Set-up and everyday commands. `make test` and `make demo` work on a fresh machine: they create
# .venv and install the pinned dependencies (constraints.txt) first.
VENV ?= .venv
PY := $(VENV)/bin/python
DATA ?= ../shared/data/cifar10/cifar10.npz

.PHONY: install test lint demo bench clean

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

install: $(VENV)/.installed

test: install lint
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

demo: install
	$(VENV)/bin/keyless demo --out demo/encryption_grid.png

bench: install
	$(PY) benchmarks/bench_cipher.py --data $(DATA)

clean:
	rm -rf $(VENV) demo .pytest_cache
