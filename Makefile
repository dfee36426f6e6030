# The two commands: `make demo` and `make test`. Both set everything up from a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: all install demo test bench lint clean sysdeps

all: test

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests drive as real clients (dig, curl). Installed only when missing.
sysdeps:
	@bash scripts/sysdeps.sh

demo: install
	bash examples/demo.sh

# ruff and mypy, configured in pyproject.toml; a prerequisite of `test`, so CI (`make test`) runs it first.
lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

# Bytecode caching on, into .venv/pycache (even where PYTHONDONTWRITEBYTECODE is set): every `python -m kubesvc` the
# tests start would otherwise compile kubesvc from source (~0.1 s of CPU each, a quarter of a CLI call), and each
# pytest worker would rewrite every test module's asserts again (8 s of CPU per worker). --dist loadfile: a file's tests
# run on one worker, so a module-scoped apiserver or test bed is started once, not once per worker.
test: install sysdeps lint
	PYTHONDONTWRITEBYTECODE= PYTHONPYCACHEPREFIX=$(CURDIR)/$(VENV)/pycache $(BIN)/python -m pytest -n 3 --dist loadfile -q tests

bench: install
	BENCH=1 bash scripts/sysdeps.sh
	$(BIN)/python bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info
