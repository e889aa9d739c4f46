"""Class names of classifiers (transformers' `id2label`) and pipeline-style top-k predictions."""

import numpy as np

from keras_perceiver.validation import check_positive_int


class ClassNamesMixin:
    """`id2label`: the class names of a classifier's K logits, and `classify(x)` with names and scores.

    `id2label` is a list of K strings (or None: classes are named by their
    index); constructor argument and config entry of the classifiers;
    `from_transformers` fills it from the checkpoint's `config.json`.

    Source: transformers `PretrainedConfig.id2label` and its
    `image-classification` / `text-classification` pipelines (`top_k`,
    `[{"label", "score"}]`).
    """

    def __init__(self, *args, id2label=None, **kwargs):
        super().__init__(*args, **kwargs)
        outputs = self.outputs
        num_classes = outputs[0].shape[-1] if len(outputs) == 1 else None
        if id2label is not None and num_classes is None:
            raise ValueError(
                f"{type(self).__name__}: `id2label` names the classes of a single logits output. "
                f"Received: a model with {len(outputs)} outputs"
            )
        self._set_class_names(id2label, num_classes)

    def _set_class_names(self, id2label, num_classes):
        if id2label is not None:
            id2label = [str(name) for name in id2label]
            if len(id2label) != num_classes:
                raise ValueError(
                    f"{type(self).__name__}: `id2label` must name each of the {num_classes} classes. "
                    f"Received: {len(id2label)} names"
                )
        self.id2label = id2label

    def classify(self, x, top_k=5, batch_size=None):
        """The top-k classes of each example with their softmax probabilities, as transformers' pipelines.

        Args:
            x: the model's inputs, or raw inputs when the model carries a
                task preprocessor (e.g. a list of strings, uint8 images).
            top_k: int, k (at most K). Defaults to 5.
            batch_size: optional int, `predict`'s batch size.

        Returns:
            A list (one per example) of k dicts `{"label": str, "score":
            float}`, best first; the label is `id2label[i]` or `str(i)`. For
            per-position logits (B, L, K) (token classification): per
            example, a list of L such lists.

        Raises:
            ValueError: for a non-positive `top_k`.
        """
        check_positive_int("top_k", top_k)
        logits = np.asarray(self.predict(x, batch_size=batch_size, verbose=0), np.float64)
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
        names = self.id2label or [str(i) for i in range(logits.shape[-1])]
        ranks = np.argsort(-probabilities, axis=-1)[..., : min(top_k, logits.shape[-1])]

        def top(rows, orders):
            if rows.ndim > 1:  # per-position outputs (token classification): one list per position
                return [top(row, order) for row, order in zip(rows, orders)]
            return [{"label": names[i], "score": float(rows[i])} for i in orders]

        return [top(row, order) for row, order in zip(probabilities, ranks)]
