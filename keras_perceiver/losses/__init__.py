"""Training losses of the Perceiver IO tasks (keras.ops only: TensorFlow, JAX and PyTorch backends)."""

from keras_perceiver.losses.masked_lm_loss import MaskedLMLoss

__all__ = ["MaskedLMLoss"]
