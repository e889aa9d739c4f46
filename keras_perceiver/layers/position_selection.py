"""Broadcast a (P, C) table of positions or queries over the batch, optionally subsampled."""

from keras import ops


def select_positions(table, batch_size, output_indices=None):
    """Broadcast `table` (P, C) to (B, P, C), or gather `output_indices` from it.

    Args:
        table: (P, C) tensor of per-position vectors.
        batch_size: int or scalar tensor, B.
        output_indices: optional integer tensor (O,) shared by the batch or
            (B, O) per example; selects rows of `table`.

    Returns:
        (B, P, C) or (B, O, C) tensor.
    """
    if output_indices is None:
        # ops.shape: the number of positions may be dynamic (a graph traced for any sequence length).
        return ops.broadcast_to(table[None], (batch_size,) + tuple(ops.shape(table)))
    selected = ops.take(table, ops.cast(output_indices, "int32"), axis=0)
    if len(output_indices.shape) == 1:
        selected = ops.broadcast_to(selected[None], (batch_size,) + tuple(ops.shape(selected)))
    return selected
