"""Shared functions of the image-classification tasks (digits, Fashion-MNIST): inputs, loss, metrics.

Labels stay integers (sparse cross-entropy, as the main job always did)
unless label smoothing, MixUp or CutMix is on: those need one-hot targets,
so the pipeline then emits one-hot labels and the loss is
`CategoricalCrossentropy(label_smoothing=...)`.
"""

import keras
import tensorflow as tf

from training.augmentation import build_batch_augment


def uses_one_hot(params):
    """True when the targets must be one-hot (label smoothing, MixUp or CutMix is on)."""
    return bool(params["label_smoothing"] or params["mixup_alpha"] or params["cutmix_alpha"])


def classification_loss(params):
    """Cross-entropy on logits; categorical with label smoothing when the targets are one-hot."""
    if uses_one_hot(params):
        return keras.losses.CategoricalCrossentropy(
            from_logits=True, label_smoothing=params["label_smoothing"]
        )
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def classification_metrics(params):
    """Top-1 accuracy (named `accuracy` for both kinds of targets)."""
    if uses_one_hot(params):
        return [keras.metrics.CategoricalAccuracy(name="accuracy")]
    return [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]


def make_image_inputs(params, input_key, num_classes, image_size, normalize, value_range):
    """The (preprocess, to_inputs, batch_augment) of an image-classification task.

    Args:
        params: the run's parameters (`label_smoothing`, `crop_padding`,
            `flip`, `rand_augment`, `mixup_alpha`, `cutmix_alpha`,
            `noise_stddev`, `seed`). `noise_stddev > 0` adds Gaussian noise of
            that standard deviation, in the units of `normalize`'s outputs,
            to each training image, before the batch augmentations (which
            clip to `value_range`; without them the noise is not clipped).
        input_key: str, the model's input name.
        num_classes: int.
        image_size: tuple (H, W).
        normalize: function uint8 image tensor -> float32 model input.
        value_range: tuple, the range of `normalize`'s outputs (for
            augmentation clipping and RandAugment).

    Raises:
        ValueError: for a negative or NaN `noise_stddev`.
    """
    one_hot = uses_one_hot(params)
    noise_stddev = params.get("noise_stddev") or 0.0
    if not noise_stddev >= 0:
        raise ValueError(f"`noise_stddev` must be >= 0. Received: noise_stddev={noise_stddev!r}")

    def preprocess(example):
        return {"image": normalize(example["image"]), "label": example["label"]}

    def to_inputs(example, training, seed):
        image = example["image"]
        if training and noise_stddev:
            # Stateless, from the example's seed (the run's seed, the epoch, the example's index): a run
            # resumed from a backup adds the same noise as an uninterrupted one.
            noise = tf.random.stateless_normal(tf.shape(image), seed, dtype=image.dtype)
            image = image + noise_stddev * noise
        label = tf.cast(example["label"], tf.int32)
        target = tf.one_hot(label, num_classes) if one_hot else label
        return {input_key: image}, target

    batch_augment = build_batch_augment(
        input_key,
        image_size,
        value_range,
        crop_padding=params["crop_padding"],
        flip=params["flip"],
        rand_augment=params["rand_augment"],
        mixup_alpha=params["mixup_alpha"],
        cutmix_alpha=params["cutmix_alpha"],
        seed=params["seed"],
    )
    return preprocess, to_inputs, batch_augment
