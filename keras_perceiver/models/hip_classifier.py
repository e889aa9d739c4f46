"""HiP classification: the class-bottleneck HiP's label token, fed as zeros, read out as logits."""

import keras
from keras import ops

from keras_perceiver.layers.modality_embedder import ModalityUnembedder
from keras_perceiver.models.class_names import ClassNamesMixin
from keras_perceiver.models.hierarchical_perceiver import hip_reconstruction_head, hip_task_backbone
from keras_perceiver.models.hip_backbone import (
    HiPBackbone,
    padding_mask_name,
)
from keras_perceiver.models.hip_class_bottleneck import check_label_backbone, read_labels
from keras_perceiver.models.hip_task_model import HiPTaskModel
from keras_perceiver.models.task_pipeline import MODEL_KEYWORDS
from keras_perceiver.validation import check_positive_int


def _label(model_name, backbone, num_classes):
    """(the backbone's one label modality, K), checked: the label must be one token of K channels."""
    check_label_backbone(model_name, backbone)
    labels = backbone.label_modalities
    if len(labels) != 1:
        raise ValueError(
            f"{model_name}: the backbone must have exactly one label modality (the class token). "
            f"Received: label_modalities={tuple(labels)}"
        )
    label = labels[0]
    shape = tuple(backbone.input_shapes[label])
    if shape[0] != 1:
        raise ValueError(
            f"{model_name}: the label modality must be one token of num_classes channels, (1, K). "
            f"Received: input_shapes[{label!r}]={shape}"
        )
    if num_classes is not None and num_classes != shape[1]:
        raise ValueError(
            f"{model_name}: `num_classes` must equal the channels of the backbone's label modality. "
            f"Expected num_classes={shape[1]} (input_shapes[{label!r}]={shape}). "
            f"Received: num_classes={num_classes}"
        )
    return label, shape[1]


def _build_backbone(name, num_classes, label_name, dtype, kwargs):
    """The flat form's `HiPBackbone`: the data modalities plus the label (1, K), entering at the processor."""
    if num_classes is None:
        raise ValueError(
            f"{name}: give `num_classes` (the classes, K) to build the backbone, or a `backbone`. "
            "Received: num_classes=None"
        )
    check_positive_int("num_classes", num_classes)
    shapes = kwargs.pop("input_shapes", None)
    if isinstance(shapes, dict) and label_name in shapes:
        raise ValueError(
            f"{name}: `label_name` must not be a data modality: the label is added to `input_shapes` "
            f"as (1, num_classes). Received: label_name={label_name!r}, input_shapes "
            f"modalities {list(shapes)}"
        )
    if "label_modalities" in kwargs:
        raise TypeError(
            f"{name}: `label_modalities` is set by the classifier ((label_name,)). "
            f"Received: label_modalities={kwargs['label_modalities']!r}"
        )
    if isinstance(shapes, dict):
        shapes = {**shapes, label_name: (1, num_classes)}
    return HiPBackbone(input_shapes=shapes, label_modalities=(label_name,), dtype=dtype, **kwargs)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class HiPClassifier(ClassNamesMixin, HiPTaskModel):
    """HiP classification: modalities {m: (B, M_m, C_m)} -> logits (B, num_classes).

    Classification as HiP does it (official `HiPClassBottleneck`): a label
    modality of one token with K = `num_classes` channels enters at the
    processor and its reconstruction is the class logits. Here the token is
    fed as zeros inside the model (the user passes the data modalities
    only), so its embedding is a learned class query with a learned
    position; the head (`label_reconstruction_head`, then
    `label_unembedder` to K channels) reads the processor's latents, as in
    `HiPClassBottleneck`.

    The logits are read right after the processor, so the backbone's
    decoder blocks do not take part: the model's weights (and
    `count_params()`, `fit`'s updates, its saved weights) are the encoder,
    the processor, the label layers and the head. The backbone is the one
    of a `HiPClassBottleneck` (same layer names), so a backbone pretrained
    there, e.g. by masked auto-encoding, can be passed in.

    Train it with `default_loss()`, `SparseCategoricalCrossentropy(
    from_logits=True)`, on integer class targets (B,).

    Build it from the data modalities and the backbone's arguments,
    `HiPClassifier(input_shapes={"image": (M, C)}, num_classes=K,
    num_groups=..., ...)`, which builds a `HiPBackbone` with the extra label
    modality `label_name`: (1, K) and `label_modalities=(label_name,)`; or
    from such a backbone, `HiPClassifier(backbone=...)`. Both have the same
    config (`"backbone"`).

    Source: HiP (arXiv 2202.10890) sections 3-4 (ImageNet classification);
    official `perceiver.py` `HiPClassBottleneck`.

    Args:
        backbone: a `HiPBackbone` with one label modality of shape (1, K),
            or None to build one from `**kwargs`.
        num_classes: int, K. Required without `backbone`; with one it must
            match (or be None).
        label_name: str, the name of the label modality built without
            `backbone`. Defaults to `"label"`.
        dtype: dtype policy of the head's layers (and of a backbone built
            here).
        **kwargs: `HiPBackbone` arguments (when `backbone` is None;
            `input_shapes` holds the data modalities only), and `name` /
            `trainable`.

    Inputs (a dict):
        `<m>`: (B, M_m, C_m) for every data modality (not the label).
        `<m>_padding_mask`: optional (B, M_m) bool.

    Returns:
        (B, num_classes) logits.

    Raises:
        TypeError: for a `backbone` that is not a `HiPBackbone`, or both a
            backbone and backbone arguments.
        ValueError: for a backbone without exactly one label modality of
            shape (1, K), a `num_classes` that is missing, not positive or
            not K, a `label_name` that is a data modality, the backbone's
            own errors, and at call for missing modalities or inputs of the
            wrong shape.

    Example:
    >>> import keras
    >>> from keras_perceiver.models import HiPClassifier
    >>> model = HiPClassifier(input_shapes={"image": (12, 3)}, num_classes=5, num_groups=(4, 1, 4),
    ...     num_self_attends_per_block=1, num_latents=(2, 4, 2), latent_dim=(8, 16, 8),
    ...     num_cross_attention_heads=1, num_self_attention_heads=2, cross_attention_widening_factor=1,
    ...     self_attention_widening_factor=2, num_embedding_channels=4)
    >>> tuple(model({"image": keras.ops.ones((2, 12, 3))}).shape)
    (2, 5)
    """


    @classmethod
    def from_preset(cls, preset, weights=None, **kwargs):
        """An official variant (`presets`) with a label token of `num_classes`, or a saved directory.

        Args:
            preset: str, a name in `presets` (then give `input_shapes` of the
                data modalities and `num_classes`), or a directory written by
                `save_to_preset`.
            weights: optional `.weights.h5` path to load.
            **kwargs: the constructor's arguments, over the variant's.

        Example:
        >>> from keras_perceiver.models import HiPClassifier
        >>> model = HiPClassifier.from_preset("hip_16",  # doctest: +SKIP
        ...     input_shapes={"image": (50176, 3)}, num_classes=1000)
        """
        if isinstance(preset, str) and preset in cls.presets:
            model = cls(**{**HiPBackbone.presets[preset]["config"], **kwargs})
            if weights is not None:
                model.load_weights(weights)
            return model
        return super().from_preset(preset, weights=weights, **kwargs)

    def __init__(self, backbone=None, num_classes=None, label_name="label", dtype=None, **kwargs):
        model_kwargs = {key: kwargs.pop(key) for key in MODEL_KEYWORDS if key in kwargs}
        name = self.__class__.__name__
        if backbone is None:
            backbone = _build_backbone(name, num_classes, label_name, dtype, kwargs)
        else:
            backbone = hip_task_backbone(name, backbone, dtype, kwargs)
        label, num_classes = _label(name, backbone, num_classes)
        config = {"backbone": backbone, "dtype": dtype}
        data_shapes = {m: shape for m, shape in backbone.input_shapes.items() if m != label}

        # === Layers ===
        label_reconstruction_head = hip_reconstruction_head(
            backbone.activation, dtype, name="label_reconstruction_head"
        )
        label_unembedder = ModalityUnembedder({label: num_classes}, dtype=dtype, name="label_unembedder")

        # === Functional graph ===
        inputs = backbone.task_inputs()
        inputs.pop(label)
        inputs.pop(padding_mask_name(label))
        first = inputs[next(iter(data_shapes))]
        # The label token, zeros (B, 1, K): batch-sized from a data input, so that any batch works.
        zeros = ops.repeat(ops.zeros_like(first[:, :1, :1]), num_classes, axis=2)
        encoded = backbone.encode({**inputs, label: zeros})
        logits = label_unembedder(read_labels(encoded, label_reconstruction_head, backbone.processor_index))
        logits = ops.squeeze(logits[label], axis=1)  # the one label token: (B, K)
        super().__init__(inputs=inputs, outputs=logits, **model_kwargs)

        # === Config ===
        self.label_reconstruction_head = label_reconstruction_head
        self.label_unembedder = label_unembedder
        self.label_name = label
        self.data_shapes = data_shapes
        self.num_classes = num_classes
        self._set_backbone(backbone, config)

    def modality_shapes(self):
        return self.data_shapes

    def _set_backbone(self, backbone, config):
        # Not tracked as sub-layers: the model's weights are only those its graph uses (the decoder
        # blocks of the backbone are not), so `fit` and saving see no weight without a gradient.
        object.__setattr__(self, "backbone", backbone)
        object.__setattr__(self, "_perceiver_config", config)



    def default_loss(self):
        """`SparseCategoricalCrossentropy(from_logits=True)`: integer targets (B,), the model's logits."""
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)

