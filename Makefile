# Two commands for a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Both create .venv and install everything they need.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint clean

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip setuptools wheel
	# torch first, pinned: the CPU wheel; transformers must not pull a CUDA build.
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e ".[test]"
	touch $(STAMP)

demo: venv
	$(VENV)/bin/python -m training.train --task=digits --model_dir=runs/digits

test: venv
	$(VENV)/bin/python -m pytest -q tests

lint: venv
	$(VENV)/bin/ruff check .

clean:
	rm -rf runs build *.egg-info
