"""Test session setup: backend, quiet logs and two logical CPUs for `MirroredStrategy`.

This file is imported by pytest before any test module, so the device setup
below happens before TensorFlow initializes its devices.
"""

import logging
import os
import warnings

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

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
