"""Plots for people (PNG, matplotlib): training curves, confusion matrices, optical flow, reconstructions,
attention maps.

Every function writes one PNG file and returns its path; matplotlib runs
with the non-interactive Agg backend (no display needed).
"""

import csv
import json
import os

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def read_history(path):
    """A training history as {metric: list of floats}: a Keras `CSVLogger` file or a JSON dict of lists.

    A CSV file may hold an epoch more than once (`training.train` appends
    across resumed runs, and a run killed between logging an epoch and
    backing it up repeats that epoch): the last row of each epoch is kept,
    in epoch order. Columns that are not all numbers (e.g. `NA`) are left
    out.

    Raises:
        ValueError: if the file has no numeric columns.
    """
    if str(path).endswith(".json"):
        with open(path) as f:
            data = json.load(f)
        history = data.get("history", data)
    else:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        if rows and "epoch" in rows[0]:
            # The last row of each epoch; a later run's rows replace an earlier one's.
            rows = list({int(float(row["epoch"])): row for row in rows}.items())
            rows = [row for _, row in sorted(rows, key=lambda item: item[0])]
        history = {key: [row[key] for row in rows] for key in (rows[0] if rows else {}) if key != "epoch"}
    parsed = {}
    for key, values in history.items():
        try:
            parsed[key] = [float(value) for value in values]
        except (TypeError, ValueError):
            continue
    if not parsed:
        raise ValueError(
            f"read_history: no numeric training history in {str(path)!r}. Received columns: {list(history)}"
        )
    return parsed


def plot_training_curves(history, path, title="Training curves"):
    """One panel per metric (`loss`, `accuracy`, ...) with its `val_` twin, against the epoch.

    Args:
        history: dict metric -> list of floats, or a path to a `CSVLogger`
            CSV / JSON history file (see `read_history`).
        path: str, the PNG to write.
        title: str.

    Returns:
        str, `path`.
    """
    if not isinstance(history, dict):
        history = read_history(history)
    names = [name for name in history if not name.startswith("val_")]
    names += [name[4:] for name in history if name.startswith("val_") and name[4:] not in history]
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.2), squeeze=False)
    for axis, name in zip(axes[0], names):
        for key, style in ((name, "-"), (f"val_{name}", "--")):
            if key in history:
                epochs = np.arange(1, len(history[key]) + 1)
                axis.plot(epochs, history[key], style, marker=".", label=key)
        axis.set_xlabel("epoch")
        axis.set_title(name)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return str(path)


def plot_confusion_matrix(matrix, path, class_names=None, title="Confusion matrix"):
    """A confusion matrix (rows: true class, columns: predicted), row-normalized colours, counts written in.

    Returns:
        str, `path`.
    """
    matrix = np.asarray(matrix)
    num_classes = matrix.shape[0]
    class_names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    plt = _pyplot()
    size = max(4.0, 0.45 * num_classes + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    image = axis.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="fraction of the true class")
    axis.set_xticks(range(num_classes), class_names, rotation=90 if num_classes > 10 else 0)
    axis.set_yticks(range(num_classes), class_names)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    if num_classes <= 30:
        for i in range(num_classes):
            for j in range(num_classes):
                color = "white" if rates[i, j] > 0.5 else "black"
                axis.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=7, color=color)
    axis.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return str(path)


def flow_to_color(flow, max_magnitude=None):
    """Optical flow (H, W, 2) -> uint8 RGB (H, W, 3): hue = direction, saturation = magnitude (white = 0).

    The usual visualization of optical-flow papers (Baker et al., Middlebury),
    computed with an HSV wheel. `max_magnitude` sets full saturation
    (default: the largest magnitude of `flow`).
    """
    from matplotlib.colors import hsv_to_rgb

    flow = np.nan_to_num(np.asarray(flow, np.float64))
    u, v = flow[..., 0], flow[..., 1]
    magnitude = np.hypot(u, v)
    scale = max_magnitude if max_magnitude is not None else max(float(magnitude.max()), 1e-9)
    hue = (np.arctan2(-v, -u) / np.pi + 1.0) / 2.0
    saturation = np.clip(magnitude / scale, 0.0, 1.0)
    hsv = np.stack([hue, saturation, np.ones_like(hue)], axis=-1)
    return np.round(hsv_to_rgb(hsv) * 255).astype(np.uint8)


def plot_flow(frames, flow_true, flow_pred, path, valid=None, title="Optical flow"):
    """Frame 0, frame 1, true and predicted flow colour images and the end-point error map.

    Args:
        frames: (2, H, W, 3) float in [-1, 1] (the readers' format) or uint8.
        flow_true, flow_pred: (H, W, 2) float, pixels.
        path: str, the PNG to write.
        valid: optional (H, W), 0 where there is no ground truth (grey in the
            error map).

    Returns:
        str, `path`.
    """
    frames = np.asarray(frames)
    images = frames if frames.dtype == np.uint8 else np.clip((frames + 1.0) / 2.0, 0.0, 1.0)
    scale = max(float(np.abs(flow_true).max()), 1e-9)
    error = np.hypot(*(np.asarray(flow_pred) - np.asarray(flow_true)).transpose(2, 0, 1))
    if valid is not None:
        error = np.where(np.asarray(valid) > 0, error, np.nan)
    plt = _pyplot()
    figure, axes = plt.subplots(1, 5, figsize=(18, 3.6))
    panels = [
        (images[0], "frame 0"),
        (images[1], "frame 1"),
        (flow_to_color(flow_true, scale), "true flow"),
        (flow_to_color(flow_pred, scale), "predicted flow"),
    ]
    for axis, (image, name) in zip(axes, panels):
        axis.imshow(image)
        axis.set_title(name)
        axis.axis("off")
    shown = axes[4].imshow(error, cmap="magma")
    axes[4].set_title(f"end-point error (mean {np.nanmean(error):.2f} px)")
    axes[4].axis("off")
    figure.colorbar(shown, ax=axes[4], fraction=0.046, pad=0.04)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return str(path)


def plot_reconstructions(originals, reconstructions, path, title="Reconstructions", max_items=8):
    """Originals (top row) over reconstructions (bottom row): images (N, H, W, C) or signals (N, S).

    Values of images are shown clipped to [0, 1] (floats) or as uint8.

    Returns:
        str, `path`.
    """
    originals, reconstructions = np.asarray(originals)[:max_items], np.asarray(reconstructions)[:max_items]
    count = len(originals)
    plt = _pyplot()
    figure, axes = plt.subplots(2, count, figsize=(2.2 * count, 4.6), squeeze=False)
    for j in range(count):
        for i, (row, name) in enumerate(((originals, "original"), (reconstructions, "reconstruction"))):
            axis = axes[i, j]
            item = row[j]
            if item.ndim == 1:
                axis.plot(item, linewidth=0.6)
                axis.set_xticks([])
            else:
                shown = item if item.dtype == np.uint8 else np.clip(item, 0.0, 1.0)
                axis.imshow(shown[..., 0] if shown.shape[-1] == 1 else shown, cmap="gray")
                axis.axis("off")
            if j == 0:
                axis.set_title(name, fontsize=8, loc="left")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return str(path)


def attention_grid(num_inputs, image_shape):
    """The (h, w) grid of `num_inputs` encoder inputs over an image (H, W): H*W pixels or a stem's h*w cells.

    Raises:
        ValueError: if no grid of the image's aspect ratio holds `num_inputs` inputs.
    """
    height, width = image_shape[:2]
    scale = np.sqrt(height * width / num_inputs)
    grid = (int(round(height / scale)), int(round(width / scale)))
    if grid[0] * grid[1] != num_inputs:
        raise ValueError(
            f"attention maps: {num_inputs} encoder inputs do not tile a {height}x{width} image. "
            f"Expected H*W inputs or a downsampled grid of the same aspect ratio. Received: {num_inputs}"
        )
    return grid


def plot_attention_maps(image, attention, path, num_latents=8, title="Latent attention over the input"):
    """The image, then the attention (M,) of `num_latents` latents over it, drawn on the image's grid.

    Args:
        image: (H, W, C) uint8 or float in [0, 1].
        attention: (N, M) attention of the N latents over the M encoder
            inputs (averaged over heads), M = H*W or a downsampled grid.
        path: the PNG to write.
        num_latents: int, how many latents to draw (the most peaked ones,
            by their largest weight). Defaults to 8.

    Returns:
        str, `path`.
    """
    image, attention = np.asarray(image), np.asarray(attention, np.float32)
    grid = attention_grid(attention.shape[-1], image.shape)
    chosen = np.argsort(-attention.max(axis=-1))[: min(num_latents, len(attention))]
    plt = _pyplot()
    figure, axes = plt.subplots(1, len(chosen) + 1, figsize=(2.2 * (len(chosen) + 1), 2.6), squeeze=False)
    shown = image if image.dtype == np.uint8 else np.clip(image, 0.0, 1.0)
    shown = shown[..., 0] if shown.shape[-1] == 1 else shown
    extent = (0, image.shape[1], image.shape[0], 0)
    axes[0, 0].imshow(shown, cmap="gray")
    axes[0, 0].set_title("input", fontsize=8)
    for axis, latent in zip(axes[0, 1:], chosen):
        axis.imshow(shown, cmap="gray", extent=extent)
        axis.imshow(attention[latent].reshape(grid), cmap="inferno", alpha=0.6, extent=extent)
        axis.set_title(f"latent {latent}", fontsize=8)
    for axis in axes[0]:
        axis.axis("off")
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return str(path)


def is_png(path):
    """True if `path` is a PNG file (checks the 8-byte signature)."""
    if not os.path.isfile(path):
        return False
    with open(path, "rb") as f:
        return f.read(8) == b"\x89PNG\r\n\x1a\n"
