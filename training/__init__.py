"""Command-line jobs (absl flags) that train, evaluate and export the keras_perceiver models."""

from training.quiet_startup import import_tensorflow

import_tensorflow()
