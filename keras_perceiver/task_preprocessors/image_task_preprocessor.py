"""Raw images of any size -> the image model's input: center crop, resize, rescale, normalize."""

import keras
import tensorflow as tf

from keras_perceiver.task_preprocessors.task_preprocessor import TaskPreprocessor
from keras_perceiver.validation import check_choice

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class ImageTaskPreprocessor(TaskPreprocessor):
    """uint8 (or float 0..255) images (B, H, W, C) -> float32 images (B, h, w, C) under `input_name`.

    With the defaults, transformers' `PerceiverImageProcessor`: a center crop
    of `image_size / crop_size` of the shorter side (224/256), a bicubic
    resize (antialiased) to `image_size` (224, 224), x / 255, then ImageNet
    mean/std normalization. `image_size=None` keeps the size (the models
    also run on other sizes); `mean=None, std=None` gives x / 255 alone.

    Source: transformers `PerceiverImageProcessor` (`center_crop`: crop
    (size / crop_size) * min(H, W), then resize; the crop offset is floored
    as in its PIL backend, `PerceiverImageProcessorPil`; its torchvision
    backend rounds, one pixel apart for odd margins); keras-hub
    `ImageConverter`.

    Args:
        image_size: (h, w) or None. Defaults to (224, 224).
        crop_size: (h, w) or None: crop the center (image_size / crop_size)
            of the shorter side first; None skips the crop. Defaults to
            (256, 256).
        mean, std: C floats (for values in [0, 1]) or None. Default
            ImageNet's.
        interpolation: `"bicubic"` (default), `"bilinear"`, `"nearest"`,
            `"area"`.
        input_name: str, the model's input name. Defaults to `"images"`.
        image_key: str, the raw input's name in signatures and dict inputs.
            Defaults to `"image"`.
        num_channels: int, C of the signature. Defaults to 3.

    Call arguments:
        x: images (B, H, W, C) or (H, W, C) (in `tf.data` before batching),
            or a dict holding them under `image_key`.
        y, sample_weight: passed through.

    Raises:
        ValueError: for images that are not of rank 3 or 4, or a channel
            count other than `num_channels`.

    Example:
    >>> import numpy as np
    >>> from keras_perceiver.task_preprocessors import ImageTaskPreprocessor
    >>> preprocessor = ImageTaskPreprocessor(image_size=(32, 32))
    >>> tuple(preprocessor(np.zeros((2, 48, 64, 3), "uint8"))["images"].shape)
    (2, 32, 32, 3)
    """

    def __init__(
        self,
        image_size=(224, 224),
        crop_size=(256, 256),
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        interpolation="bicubic",
        input_name="images",
        image_key="image",
        num_channels=3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_choice("interpolation", interpolation, ("bicubic", "bilinear", "nearest", "area"))
        if crop_size is not None and image_size is None:
            raise ValueError(
                "ImageTaskPreprocessor: a crop is relative to `image_size`. Expected image_size with "
                f"crop_size. Received: image_size=None, crop_size={crop_size!r}"
            )
        self.image_size = tuple(image_size) if image_size is not None else None
        self.crop_size = tuple(crop_size) if crop_size is not None else None
        self.mean = tuple(mean) if mean is not None else None
        self.std = tuple(std) if std is not None else None
        self.interpolation = interpolation
        self.input_name = input_name
        self.image_key = image_key
        self.num_channels = num_channels

    @property
    def input_signature(self):
        return {
            self.image_key: tf.TensorSpec(
                (None, None, None, self.num_channels), tf.uint8, name=self.image_key
            )
        }

    def convert(self, x):
        images = self._numeric(x, self.image_key)
        if images.shape.rank not in (3, 4) or images.shape[-1] != self.num_channels:
            raise ValueError(
                f"ImageTaskPreprocessor: expected images (B, H, W, {self.num_channels}) or "
                f"(H, W, {self.num_channels}). Received: shape {tuple(images.shape)}"
            )
        single = images.shape.rank == 3
        images = tf.cast(images[tf.newaxis] if single else images, tf.float32)
        if self.crop_size is not None:
            height, width = tf.shape(images)[1], tf.shape(images)[2]
            shorter = tf.cast(tf.minimum(height, width), tf.float32)
            crop_height = tf.cast(self.image_size[0] / self.crop_size[0] * shorter, tf.int32)
            crop_width = tf.cast(self.image_size[1] / self.crop_size[1] * shorter, tf.int32)
            top, left = (height - crop_height) // 2, (width - crop_width) // 2
            images = images[:, top : top + crop_height, left : left + crop_width]
        if self.image_size is not None:
            images = tf.image.resize(images, self.image_size, method=self.interpolation, antialias=True)
        images = images / 255.0
        if self.mean is not None:
            images = (images - tf.constant(self.mean, tf.float32)) / tf.constant(self.std, tf.float32)
        return {self.input_name: images[0] if single else images}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_size": self.image_size,
                "crop_size": self.crop_size,
                "mean": self.mean,
                "std": self.std,
                "interpolation": self.interpolation,
                "input_name": self.input_name,
                "image_key": self.image_key,
                "num_channels": self.num_channels,
            }
        )
        return config
