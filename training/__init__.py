"""Command-line jobs (absl flags) that train, evaluate and export the keras_perceiver models."""
