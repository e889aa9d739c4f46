# Two commands for a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Both create .venv (python3.11) and install everything on first use, then reuse it.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
PYTEST_FLAGS ?= -q -ra
DEMO_FLAGS ?= --task=digits --model_dir=runs/digits

# Quiet TensorFlow's C++ start-up logging (CUDA probes, CPU feature notes).
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv demo test lint clean

venv: $(STAMP)

# Re-runs only when the install metadata changes. torch first, pinned, on its own: pip takes the
# local CPU wheel, so transformers never pulls a CUDA build.
$(STAMP): setup.cfg pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip setuptools wheel
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e ".[test]"
	touch $(STAMP)

# The main job: train (and check the SavedModel against Keras), export for clients (SavedModel with a uint8
# image signature + TFLite), then evaluate the exported model on the held-out digits.
demo: venv
	$(VENV)/bin/python -m training.train $(DEMO_FLAGS)
	$(VENV)/bin/python -m training.export --model_dir=runs/digits --output=runs/digits/export \
		--formats=saved_model,tflite
	$(VENV)/bin/python -m training.evaluate --model=runs/digits/export

test: venv
	$(VENV)/bin/python -m pytest $(PYTEST_FLAGS) tests

lint: venv
	$(VENV)/bin/ruff check .

clean:
	rm -rf runs build *.egg-info
