"""Decoding many output queries a chunk at a time: `decode_in_chunks` of the task models with large outputs.

A Perceiver IO decoder treats each output query on its own (cross-attention
from the query to the latents, then a per-query MLP), so decoding the queries
in slices and concatenating the results equals one decode of all of them
(`model(inputs)`), while the decoder's activations exist for one slice at a
time: flow at 2^20 pixels, a masked LM at long lengths. The attention inside
each slice is chunked by the layers themselves where it is large
(`attention_chunk_size`). `PerceiverMultimodalAutoencoder.reconstruct` does
the same for its multimodal queries, built slice by slice.

Source: Perceiver IO (arXiv 2107.14795) section 2.3 (each output depends only
on its query and the latents).
"""

from keras import ops

from keras_perceiver.models.model_inputs import check_model_inputs
from keras_perceiver.validation import check_positive_int


class ChunkedDecodingMixin:
    """`decode_in_chunks` for a task model that defines how it encodes, queries and finishes.

    Subclasses implement `_chunked_encode(inputs) -> (queries (B, O, E),
    latents (B, N, D))` and `_chunked_finish(decoded (B, O, C), inputs)`;
    the decoder is the model's layer named `"decoder"`.
    """

    def _chunked_placeholders(self, inputs):
        """Inputs the model requires that chunked decoding does not use (e.g. `output_indices`), for checking
        the others against the model's inputs."""
        return {}

    def decode_in_chunks(self, inputs, chunk_size=65536):
        """Encode once, decode the O output queries `chunk_size` at a time; equals `model(inputs)`.

        Args:
            inputs: the backbone's inputs, as for `model(inputs)` (a dict, or
                a lone array for a single input); `output_indices` (models
                built with `subsample_outputs`) is not used: every output is
                decoded.
            chunk_size: int, queries decoded per step. Defaults to 65536.

        Returns:
            The model's outputs for all O queries (e.g. flow (B, H, W, 2),
            logits (B, L, V)), computed without inference-time dropout.

        Raises:
            ValueError: for a `chunk_size` that is not a positive integer,
                and the input errors of `model(inputs)`.
        """
        check_positive_int("chunk_size", chunk_size)
        inputs = self.named_inputs(inputs)
        if not isinstance(inputs, dict):
            raise TypeError(
                f"{self.__class__.__name__}.decode_in_chunks: `inputs` must be a dict of the backbone's "
                f"inputs {sorted(t.name for t in self.backbone.inputs)} (or one array). "
                f"Received: {type(inputs).__name__}"
            )
        inputs = {key: value for key, value in inputs.items() if key != "output_indices"}
        check_model_inputs(self, {**inputs, **self._chunked_placeholders(inputs)})
        queries, latents = self._chunked_encode(inputs)
        decoder = self.get_layer("decoder")
        total = queries.shape[1] if queries.shape[1] is not None else int(ops.shape(queries)[1])
        pieces = [
            decoder(queries[:, start : start + chunk_size], latents, training=False)
            for start in range(0, total, chunk_size)
        ]
        return self._chunked_finish(ops.concatenate(pieces, axis=1), inputs)
