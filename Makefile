# Two commands for a newcomer: `make demo` and `make test`. Both set up .venv first if needed.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
OUT    ?= outputs/demo

.PHONY: setup demo test test-slow test-large lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# CPU torch first, so the resolver does not pull a CUDA build for `torch>=...`.
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[dev,export]"
	touch $@

setup: $(VENV)/.installed

demo: setup
	PY=$(PY) OUT=$(OUT) bash scripts/demo.sh

test: setup
	$(PY) -m pytest -q
	bash scripts/ensure_java.sh
	bash android_demo/core/test.sh

test-slow: setup
	RUN_SLOW_TESTS=1 $(PY) -m pytest -q -m slow

lint: setup
	$(PY) -m ruff check .

test-large: setup
	RUN_LARGE_TESTS=1 $(PY) -m pytest -q -m large

clean:
	rm -rf outputs build *.egg-info
