"""Bicubic resampling of a learned position grid, as PyTorch's `interpolate(mode="bicubic")` computes it."""

import numpy as np
from keras import ops

# PyTorch's cubic convolution coefficient (`upsample_bicubic2d`); TensorFlow and JAX use -0.5.
CUBIC_COEFFICIENT = -0.75


def _cubic_weights(t, a=CUBIC_COEFFICIENT):
    """Weights (..., 4) of the taps at offsets -1, 0, 1, 2 for fractional positions `t` (...)."""
    distances = np.stack([1.0 + t, t, 1.0 - t, 2.0 - t], axis=-1)
    near = ((a + 2.0) * distances - (a + 3.0)) * distances * distances + 1.0  # |x| <= 1
    far = ((a * distances - 5.0 * a) * distances + 8.0 * a) * distances - 4.0 * a  # 1 < |x| < 2
    return np.where(distances <= 1.0, near, far)


def bicubic_matrix(in_size, out_size):
    """(out_size, in_size) float32 matrix A with `A @ x` = x resampled along one axis.

    PyTorch's `align_corners=False` geometry: output index i samples the
    input at (i + 0.5) * in_size / out_size - 0.5, from the four nearest
    inputs with cubic-convolution weights (coefficient -0.75), indices
    clamped to the border. Equal sizes give the identity.

    Source: PyTorch `aten/src/ATen/native/UpSample.h` (`upsample_bicubic2d`),
    used by transformers `PerceiverTrainablePositionEncoding.interpolate_pos_encoding`.
    """
    scale = in_size / out_size
    source = (np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5
    base = np.floor(source)
    weights = _cubic_weights(source - base)
    matrix = np.zeros((out_size, in_size), np.float64)
    rows = np.arange(out_size)
    for tap in range(4):
        columns = np.clip(base.astype(np.int64) - 1 + tap, 0, in_size - 1)
        np.add.at(matrix, (rows, columns), weights[:, tap])
    return matrix.astype(np.float32)


def bicubic_resize_grid(table, grid, size):
    """Resample a flat position table (P, C) laid out row-major on `grid` (h, w) to `size` (H, W).

    Returns (H * W, C) in the table's dtype (computed in float32).
    """
    (in_height, in_width), (height, width) = grid, size
    channels = table.shape[-1]
    values = ops.reshape(ops.cast(table, "float32"), (in_height, in_width, channels))
    rows = ops.convert_to_tensor(bicubic_matrix(in_height, height))
    columns = ops.convert_to_tensor(bicubic_matrix(in_width, width))
    resized = ops.einsum("Hh,hwc,Ww->HWc", rows, values, columns)
    return ops.cast(ops.reshape(resized, (height * width, channels)), table.dtype)
