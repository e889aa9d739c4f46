"""Full-resolution optical flow from a model trained on a fixed window: overlapping tiles, blended.

The optical-flow perceiver is trained on 368x496 crops and its Fourier
positions are tied to that window. DeepMind's optical-flow colab evaluates
larger frames (e.g. Sintel's 436x1024) by covering them with overlapping
windows, predicting each window and averaging the predictions with weights
that fall off towards each window's border. This module does the same:

- `tile_origins`: window corners along each axis step by at most
  `window - min_overlap`, the last window flush with the far border, so
  neighbouring windows overlap by at least `min_overlap` pixels and every
  pixel is covered.
- `tile_weights`: a window pixel's weight is its (1-based) distance to the
  nearest window border, `min(y + 1, h - y, x + 1, w - x)`, normalized so
  that the weights of all windows sum to 1 at every pixel of the frame.
- `predict_flow_tiled`: cut the tiles, run the model on them in batches
  (tiles of all examples together), blend.

Source: Perceiver IO (arXiv 2107.14795) section 4.2 and DeepMind's
`optical_flow.ipynb` colab (`compute_grid_indices`, `compute_optical_flow`).
"""

import keras
import numpy as np

from keras_perceiver.validation import check_positive_int


def _axis_origins(size, window, min_overlap):
    if size == window:
        return [0]
    stride = window - min_overlap
    return list(range(0, size - window, stride)) + [size - window]


def _check_sizes(image_size, window_size, min_overlap):
    image_size, window_size = tuple(image_size), tuple(window_size)
    if len(image_size) != 2 or len(window_size) != 2:
        raise ValueError(
            f"`image_size` and `window_size` must be (H, W). Received: image_size={image_size}, "
            f"window_size={window_size}"
        )
    for name, size in (("window_size", window_size), ("image_size", image_size)):
        for value in size:
            check_positive_int(name, value)
    if image_size[0] < window_size[0] or image_size[1] < window_size[1]:
        raise ValueError(
            f"The frames must be at least as large as the model's window. Expected H >= "
            f"{window_size[0]} and W >= {window_size[1]}. Received: (H, W)={image_size}"
        )
    if isinstance(min_overlap, bool) or not isinstance(min_overlap, int) or min_overlap < 0:
        raise ValueError(
            f"`min_overlap` must be a non-negative integer. Received: min_overlap={min_overlap!r}"
        )
    if min_overlap >= min(window_size):
        raise ValueError(
            f"`min_overlap` must be smaller than the window. Expected min_overlap < {min(window_size)}. "
            f"Received: min_overlap={min_overlap}, window_size={window_size}"
        )
    return image_size, window_size


def tile_origins(image_size, window_size, min_overlap=20):
    """Top-left corners (y, x) of overlapping windows that cover an image.

    Args:
        image_size: tuple (H, W) of the frames.
        window_size: tuple (h, w) of the model's window, h <= H and w <= W.
        min_overlap: int, least overlap in pixels of neighbouring windows.
            Defaults to 20 (the colab's value).

    Returns:
        A list of (y, x) int tuples, row-major; windows are flush with the
        frame's top/left and bottom/right borders.

    Raises:
        ValueError: for frames smaller than the window or an overlap that is
            negative or not smaller than the window.

    Example:
    >>> from keras_perceiver.models.optical_flow_tiling import tile_origins
    >>> tile_origins((10, 12), (6, 8), min_overlap=2)
    [(0, 0), (0, 4), (4, 0), (4, 4)]
    """
    (height, width), (h, w) = _check_sizes(image_size, window_size, min_overlap)
    ys = _axis_origins(height, h, min_overlap)
    xs = _axis_origins(width, w, min_overlap)
    return [(y, x) for y in ys for x in xs]


def window_weights(window_size):
    """(h, w) float64 weights: each pixel's 1-based distance to the nearest window border."""
    h, w = window_size
    ys = np.minimum(np.arange(h) + 1, h - np.arange(h))
    xs = np.minimum(np.arange(w) + 1, w - np.arange(w))
    return np.minimum(ys[:, None], xs[None, :]).astype("float64")


def tile_weights(image_size, window_size, min_overlap=20):
    """Blend weights of the windows of `tile_origins`, summing to 1 at every pixel.

    Args:
        image_size, window_size, min_overlap: as for `tile_origins`.

    Returns:
        (origins, weights): the list of T (y, x) corners and a (T, h, w)
        float64 array; `weights[t]` applies to the window at `origins[t]`.

    Raises:
        ValueError: as `tile_origins`.
    """
    origins = tile_origins(image_size, window_size, min_overlap)
    h, w = window_size
    base = window_weights(window_size)
    total = np.zeros(tuple(image_size), "float64")
    for y, x in origins:
        total[y : y + h, x : x + w] += base
    weights = np.stack([base / total[y : y + h, x : x + w] for y, x in origins])
    return origins, weights


def _window_size_of(model):
    """(h, w) of the model's `frames` input (B, 2, h, w, 3)."""
    for tensor in getattr(model, "inputs", None) or []:
        name = getattr(tensor, "name", "")
        shape = tuple(tensor.shape)
        if name.startswith("frames") and len(shape) == 5 and None not in shape[2:4]:
            return shape[2:4]
    raise ValueError(
        f"Could not read the window size from {type(model).__name__}: expected a `frames` input of static "
        "shape (B, 2, h, w, 3). Pass `window_size=(h, w)`."
    )


def predict_flow_tiled(model, frames, min_overlap=20, batch_size=8, window_size=None):
    """Optical flow of frames larger than the model's window, from overlapping tiles.

    Args:
        model: a `PerceiverOpticalFlow` (without `subsample_outputs`) or any
            model called as `model({"frames": (n, 2, h, w, 3)})` that returns
            flow (n, h, w, 2).
        frames: (B, 2, H, W, 3) array or tensor, H >= h and W >= w.
        min_overlap: int, least overlap of neighbouring tiles in pixels.
            Defaults to 20.
        batch_size: int, tiles per model call (tiles of all B examples are
            batched together). Defaults to 8.
        window_size: optional (h, w); read from the model's `frames` input
            when None.

    Returns:
        (B, H, W, 2) float32 NumPy array: the blended flow in pixels. For
        frames of the window size this is the model's output itself.

    Raises:
        ValueError: for frames that are not (B, 2, H, W, 3), smaller than the
            window, a bad `min_overlap` or `batch_size`, or a model with
            subsampled outputs.

    Example:
    >>> import numpy as np
    >>> from keras_perceiver.models import PerceiverOpticalFlow, predict_flow_tiled
    >>> model = PerceiverOpticalFlow.from_hyperparameters(image_size=(8, 8), train_size=(8, 8),
    ...     num_bands=4, num_latents=8, latent_dim=16, num_self_attends_per_block=1,
    ...     num_self_attention_heads=2)
    >>> tuple(predict_flow_tiled(model, np.zeros((1, 2, 12, 20, 3), "float32"), min_overlap=2).shape)
    (1, 12, 20, 2)
    """
    check_positive_int("batch_size", batch_size)
    if getattr(model, "subsample_outputs", False):
        raise ValueError(
            "predict_flow_tiled needs the full flow field of each tile. Received a model with "
            "subsample_outputs=True; build it with subsample_outputs=False (the weights are the same)."
        )
    frames = np.asarray(keras.ops.convert_to_numpy(frames))
    if frames.ndim != 5 or frames.shape[1] != 2 or frames.shape[-1] != 3:
        raise ValueError(f"`frames` must have shape (B, 2, H, W, 3). Received: frames.shape={frames.shape}")
    window_size = tuple(window_size) if window_size is not None else _window_size_of(model)
    origins, weights = tile_weights(frames.shape[2:4], window_size, min_overlap)
    h, w = window_size
    num_examples = frames.shape[0]

    # Tile-major order: tile t of example b is row t * B + b.
    tiles = np.concatenate([frames[:, :, y : y + h, x : x + w] for y, x in origins])
    outputs = []
    for start in range(0, len(tiles), batch_size):
        flow = model({"frames": tiles[start : start + batch_size]}, training=False)
        outputs.append(np.asarray(keras.ops.convert_to_numpy(flow)))
    flows = np.concatenate(outputs)
    if flows.shape != (len(tiles), h, w, 2):
        raise ValueError(
            f"The model must return flow (n, h, w, 2) for tiles (n, 2, h, w, 3). Expected: "
            f"{(len(tiles), h, w, 2)}. Received: {flows.shape}"
        )
    if len(origins) == 1:
        return flows.astype("float32")
    blended = np.zeros((num_examples, *frames.shape[2:4], 2), "float64")
    for t, (y, x) in enumerate(origins):
        tile_flow = flows[t * num_examples : (t + 1) * num_examples].astype("float64")
        blended[:, y : y + h, x : x + w] += tile_flow * weights[t][None, :, :, None]
    return blended.astype("float32")
