"""Image augmentation of the training pipelines, from Keras' own preprocessing layers, each switchable.

The Perceiver ImageNet recipe (arXiv 2103.03206 section 4.1 and appendix;
arXiv 2107.14795 appendix) trains with random crops, horizontal flips,
RandAugment, MixUp and CutMix. `build_batch_augment` composes
`keras.layers.RandomCrop` (after zero-padding, for small images),
`keras.layers.RandomFlip`, `keras.layers.RandAugment`, `keras.layers.MixUp`
and `keras.layers.CutMix` into one function on per-replica batches that runs
inside `tf.data` (`training/pipeline.py`, `batch_augment`). Only training
batches are augmented.

MixUp and CutMix mix the labels too, so they need one-hot (float) labels;
the image tasks switch to one-hot labels and `CategoricalCrossentropy`
whenever they are on (`training/tasks/image_classification.py`).

Reproducibility: the layers draw from their own seeded generators (`seed`),
so a run is reproducible from its start, but a run resumed from a backup
draws other augmentations than an uninterrupted one (the rest of the
pipeline is exactly resumable).
"""

import keras
import tensorflow as tf


def build_batch_augment(
    image_key,
    image_size,
    value_range,
    crop_padding=0,
    flip=False,
    rand_augment=False,
    rand_augment_magnitude=0.5,
    mixup_alpha=0.0,
    cutmix_alpha=0.0,
    seed=None,
):
    """A function `(x, y) -> (x, y)` on per-replica batches, or None when every augmentation is off.

    Args:
        image_key: str, key of the images (B, H, W, C) in the inputs dict `x`.
        image_size: tuple (H, W) of the images.
        value_range: tuple (low, high) of the pixel values (RandAugment's
            `value_range`; results are clipped to it).
        crop_padding: int >= 0, zero-pad by this many pixels on each side and
            crop a random H x W window back (`keras.layers.RandomCrop`).
            Defaults to 0 (off).
        flip: bool, random horizontal flips (`keras.layers.RandomFlip`).
            Defaults to False.
        rand_augment: bool, `keras.layers.RandAugment` (2 operations).
            Defaults to False.
        rand_augment_magnitude: float in [0, 1], RandAugment's `factor`.
            Defaults to 0.5.
        mixup_alpha: float >= 0, `keras.layers.MixUp(alpha)`; 0 is off.
        cutmix_alpha: float >= 0, `keras.layers.CutMix(factor)`; 0 is off. With
            both on, each batch gets one of them with probability 1/2.
        seed: optional int, seeds the layers.

    Returns:
        A function for `tf.data` maps, or None.

    Raises:
        ValueError: for a negative padding or alpha, or a magnitude outside [0, 1].

    Example:
    >>> import tensorflow as tf
    >>> from training.augmentation import build_batch_augment
    >>> augment = build_batch_augment("images", (8, 8), (0.0, 1.0), crop_padding=1, flip=True)
    >>> x, y = augment({"images": tf.zeros((2, 8, 8, 1))}, tf.one_hot([0, 1], 10))
    >>> tuple(x["images"].shape)
    (2, 8, 8, 1)
    """
    if isinstance(crop_padding, bool) or not isinstance(crop_padding, int) or crop_padding < 0:
        raise ValueError(f"`crop_padding` must be an integer >= 0. Received: crop_padding={crop_padding!r}")
    for name, value in (("mixup_alpha", mixup_alpha), ("cutmix_alpha", cutmix_alpha)):
        if not value >= 0:
            raise ValueError(f"`{name}` must be >= 0. Received: {name}={value!r}")
    if not 0.0 <= rand_augment_magnitude <= 1.0:
        raise ValueError(f"`rand_augment_magnitude` must be in [0, 1]. Received: {rand_augment_magnitude!r}")
    height, width = image_size
    low, high = value_range

    def layer_seed(offset):
        return None if seed is None else seed + offset

    image_layers = []
    if crop_padding:
        image_layers.append(keras.layers.RandomCrop(height, width, seed=layer_seed(1), name="random_crop"))
    if flip:
        image_layers.append(keras.layers.RandomFlip("horizontal", seed=layer_seed(2), name="random_flip"))
    if rand_augment:
        image_layers.append(
            keras.layers.RandAugment(
                value_range=(low, high),
                factor=rand_augment_magnitude,
                seed=layer_seed(3),
                name="rand_augment",
            )
        )
    mixup = keras.layers.MixUp(alpha=mixup_alpha, seed=layer_seed(4), name="mixup") if mixup_alpha else None
    cutmix = (
        keras.layers.CutMix(factor=cutmix_alpha, seed=layer_seed(5), name="cutmix") if cutmix_alpha else None
    )
    if not (image_layers or mixup or cutmix):
        return None

    def augment(x, y):
        images = x[image_key]
        dtype = images.dtype
        images = tf.cast(images, "float32")
        if crop_padding:
            # Pad with the darkest value (zero in pixel space) so crops bring in background.
            images = (
                tf.pad(
                    images - low,
                    [[0, 0], [crop_padding] * 2, [crop_padding] * 2, [0, 0]],
                    constant_values=0.0,
                )
                + low
            )
        for layer in image_layers:
            images = layer(images, training=True)
        if mixup or cutmix:
            labels = tf.cast(y, "float32")
            if labels.shape.rank != 2:
                raise ValueError(
                    "MixUp and CutMix need one-hot labels (B, K). Received: labels of shape "
                    f"{tuple(labels.shape)}"
                )
            mixed = {}
            for name, layer in (("mixup", mixup), ("cutmix", cutmix)):
                if layer is not None:
                    out = layer({"images": images, "labels": labels}, training=True)
                    mixed[name] = (out["images"], out["labels"])
            if len(mixed) == 2:
                use_mixup = tf.random.uniform([], seed=layer_seed(6)) < 0.5
                images, labels = tf.cond(use_mixup, lambda: mixed["mixup"], lambda: mixed["cutmix"])
            else:
                images, labels = next(iter(mixed.values()))
            y = tf.cast(labels, y.dtype)
        images = tf.clip_by_value(images, low, high)
        return {**x, image_key: tf.cast(images, dtype)}, y

    return augment
