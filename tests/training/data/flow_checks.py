"""Photometric check of optical-flow ground truth shared by the flow-reader tests."""

import numpy as np
from scipy import ndimage


def backward_warp_error(frames, flow, valid, sign=1.0):
    """Mean |frame0 - frame1 sampled at p + sign * flow(p)| over valid pixels whose target lies inside."""
    frame0, frame1 = frames
    height, width = flow.shape[:2]
    yy, xx = np.meshgrid(np.arange(height), np.arange(width), indexing="ij")
    target_y, target_x = yy + sign * flow[..., 1], xx + sign * flow[..., 0]
    warped = np.stack(
        [ndimage.map_coordinates(frame1[..., c], [target_y, target_x], order=1) for c in range(3)], axis=-1
    )
    inside = (valid > 0) & (target_y >= 0) & (target_y <= height - 1)
    inside &= (target_x >= 0) & (target_x <= width - 1)
    return float(np.abs(warped - frame0)[inside].mean())
