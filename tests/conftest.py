"""Test session setup: backend, quiet logs and two logical CPUs for `MirroredStrategy`.

This file is imported by pytest before any test module, so the device setup
below happens before TensorFlow initializes its devices.
"""

import logging
import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest
import tensorflow as tf

NUM_LOGICAL_CPUS = 2


def _split_cpu(num_devices=NUM_LOGICAL_CPUS):
    """Split the first physical CPU into `num_devices` logical devices ("/cpu:0", "/cpu:1", ...)."""
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(num_devices)]
        )
    except RuntimeError as error:  # devices were already initialized by an earlier import
        warnings.warn(
            f"Could not split the CPU into {num_devices} logical devices ({error}); "
            "MirroredStrategy tests will fail.",
            stacklevel=2,
        )


_split_cpu()
tf.get_logger().setLevel(logging.ERROR)
logging.getLogger("absl").setLevel(logging.ERROR)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Under CI (`CI=true`), a skipped test is a failure: every capability the suite tests (torch and
    transformers, JAX, av/scikit-video, the Debian data, tensorflow-io in its environment, Pythons 3.12/3.13)
    is installed by `make test` / `.ci/run`, so a skip there means an install step is missing. Locally,
    skips stay skips and say what to install."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI", "").lower() == "true" and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under CI=true, which installs everything the tests need: {reason}"


def pytest_sessionfinish(session):
    """Under pytest-xdist, a worker hands its fuzz counts to the controller (`pytest_testnodedown`)."""
    from tests.fuzz.harness import COUNTS

    if hasattr(session.config, "workeroutput"):
        session.config.workeroutput["fuzz_counts"] = dict(COUNTS)


@pytest.hookimpl(optionalhook=True)  # an xdist hook: the tfio environment runs without xdist
def pytest_testnodedown(node, error):
    """Under pytest-xdist (controller): add up the workers' fuzz counts."""
    from tests.fuzz.harness import COUNTS

    COUNTS.update(getattr(node, "workeroutput", {}).get("fuzz_counts", {}))


def pytest_terminal_summary(terminalreporter):
    """Print the fuzz harness' case counts per entry point (tests/fuzz)."""
    from tests.fuzz.harness import COUNTS

    if COUNTS:
        terminalreporter.write_sep(
            "=", f"fuzz harness: {sum(COUNTS.values())} cases, 0 internal errors allowed"
        )
        for entry_point, count in sorted(COUNTS.items()):
            terminalreporter.write_line(f"  {entry_point}: {count}")
