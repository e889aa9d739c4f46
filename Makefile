# Two commands for a fresh machine: `make demo` (the main job) and `make test` (the test suite).
# Both create .venv (python3.11, the default stack: TensorFlow 2.21) and install everything on first use, then
# reuse it; `make test` also creates .venv-tfio (the `tfio` extra: TensorFlow 2.17 + tensorflow-io 0.37.1) and
# runs the audio-decoding tests there.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
TFIO_VENV := .venv-tfio
TFIO_STAMP := $(TFIO_VENV)/.installed
# Real offline data the data-reader tests read (Fashion-MNIST, fortunes in 9 languages, Open Inventor models
# and ivfix, Tux Paint stamps), from Debian.
DEBIAN_DATA_PACKAGES := dataset-fashion-mnist fortunes fortunes-min fortunes-de fortunes-es fortunes-it \
	fortunes-pl fortunes-ru fortunes-cs fortunes-zh inventor-data inventor-clients libinventor1 \
	tuxpaint-stamps-default
# Without root, `make debian-data` extracts the packages here (`apt-get download` + `dpkg -x`); the readers look
# for their /usr/share/... paths under $KERAS_PERCEIVER_DATA_ROOT first (training/data/sources.py).
DEBIAN_DATA_ROOT ?= $(CURDIR)/.data/debian
export KERAS_PERCEIVER_DATA_ROOT ?= $(DEBIAN_DATA_ROOT)
TFIO_TESTS ?= tests/training/data/test_audio_files.py \
	tests/training/test_export.py::ExportJobTest::test_text_model_tflite_with_select_tf_ops
PYTEST_FLAGS ?= -q -ra --durations=30
# The suite in one process per core (pytest-xdist), a test file's tests in one process (module fixtures are
# built once). Most tests are bound by Python, not by TensorFlow's threads: two processes use both cores.
PYTEST_WORKERS ?= 2
PYTEST_PARALLEL ?= -n $(PYTEST_WORKERS) --dist loadfile
DEMO_FLAGS ?= --task=digits --model_dir=runs/digits

# Quiet TensorFlow's C++ start-up logging (CUDA probes, CPU feature notes).
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv venv-tfio debian-data demo test test-fast lint clean

venv: $(STAMP)

venv-tfio: $(TFIO_STAMP)

# Re-runs only when the install metadata changes. torch first, pinned, on its own: pip takes the
# local CPU wheel, so transformers never pulls a CUDA build.
$(STAMP): setup.cfg pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip setuptools wheel
	$(VENV)/bin/pip install -q torch==2.13.0
	$(VENV)/bin/pip install -q -e ".[test]"
	touch $(STAMP)

# The tfio extra moves the whole environment to TensorFlow 2.17 (tensorflow-io 0.37.1 loads only with it).
$(TFIO_STAMP): setup.cfg pyproject.toml
	test -x $(TFIO_VENV)/bin/python || $(PYTHON) -m venv $(TFIO_VENV)
	$(TFIO_VENV)/bin/pip install -q --upgrade pip setuptools wheel
	$(TFIO_VENV)/bin/pip install -q -e ".[tfio]" pytest soundfile snownlp
	touch $(TFIO_STAMP)

# The main job: train (and check the SavedModel against Keras), export for clients (SavedModel with a uint8
# image signature + TFLite), then evaluate the exported model on the held-out digits.
demo: venv
	$(VENV)/bin/python -m training.train $(DEMO_FLAGS)
	$(VENV)/bin/python -m training.export --model_dir=runs/digits --output=runs/digits/export \
		--formats=saved_model,tflite
	$(VENV)/bin/python -m training.evaluate --model=runs/digits/export

# Gets the missing Debian data packages: as root (or with password-less sudo) `apt-get install`; otherwise
# `apt-get download` (with apt lists of its own under $(DEBIAN_DATA_ROOT)/apt when the system's are missing)
# and `dpkg -x` into $(DEBIAN_DATA_ROOT). DEBIAN_DATA_MODE=extract forces the second way.
DEBIAN_DATA_MODE ?= auto
debian-data:
	@missing=""; for package in $(DEBIAN_DATA_PACKAGES); do \
		{ [ "$(DEBIAN_DATA_MODE)" != extract ] && dpkg -s $$package >/dev/null 2>&1; } || \
		test -e "$(DEBIAN_DATA_ROOT)/.extracted/$$package" || missing="$$missing $$package"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$(DEBIAN_DATA_MODE)" != extract ] && [ "$$(id -u)" = 0 ]; then sudo=""; \
	elif [ "$(DEBIAN_DATA_MODE)" != extract ] && sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else \
		echo "make: extracting Debian packages:$$missing into $(DEBIAN_DATA_ROOT)"; \
		state="$(DEBIAN_DATA_ROOT)/apt"; debs="$(DEBIAN_DATA_ROOT)/debs"; \
		mkdir -p "$$debs" "$$state/lists/partial" "$$state/cache/archives/partial" "$(DEBIAN_DATA_ROOT)/.extracted"; \
		own="-o Dir::State::Lists=$$state/lists -o Dir::Cache=$$state/cache -o Debug::NoLocking=1"; \
		( cd "$$debs" && apt-get download -qq $$missing ) || \
		( apt-get $$own update -qq && cd "$$debs" && apt-get $$own download -qq $$missing ) || exit 1; \
		for package in $$missing; do \
			dpkg -x "$$(ls "$$debs"/$${package}_*.deb | tail -n 1)" "$(DEBIAN_DATA_ROOT)" && \
			touch "$(DEBIAN_DATA_ROOT)/.extracted/$$package" || exit 1; done; \
		exit 0; fi; \
	$$sudo apt-get update -qq && $$sudo env DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -qq --no-install-recommends $$missing

test: venv venv-tfio debian-data
	$(VENV)/bin/python -m pytest $(PYTEST_FLAGS) $(PYTEST_PARALLEL) tests
	$(TFIO_VENV)/bin/python -m pytest $(PYTEST_FLAGS) $(TFIO_TESTS)

# The fast loop: everything but the tests marked slow (training jobs, subprocess exports, installs).
test-fast: venv debian-data
	$(VENV)/bin/python -m pytest $(PYTEST_FLAGS) $(PYTEST_PARALLEL) -m "not slow" tests

lint: venv
	$(VENV)/bin/ruff check .

clean:
	rm -rf runs build dist *.egg-info
