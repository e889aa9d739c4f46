"""Task `imagenet`: the paper's ImageNet vision perceivers, on any prepared tensorflow-datasets image set.

Data: `--dataset=tfds:imagenet2012` by default (tensorflow-datasets builds it
from the manually downloaded archives; nothing is downloaded here), or any
tfds set of {"image": uint8 (H, W, 3), "label": int64} with
`--override=num_classes=K`. The tfds "validation" split is the test split;
checkpoints are selected on the first 1% of "train" (`train[:1%]`,
tensorflow-datasets' split slicing), trained on the rest. Training crops are Inception-style random crops
(area 8%..100%, aspect 3/4..4/3, drawn from the pipeline's stateless seed)
resized to 224x224; evaluation takes the central 87.5% square, resized
(transformers' `PerceiverImageProcessor`: resize 256, centre crop 224).
Pixels are normalized with the ImageNet mean and std, as transformers'
processor does. Flips, RandAugment, MixUp and CutMix are flags.

Model: `PerceiverImageClassifier.from_preset("vision_perceiver_fourier")`
by default (`--preset=vision_perceiver_learned` / `vision_perceiver_conv`).
Defaults: LAMB, warm-up + constant + cosine, weight decay 0.1 without biases
and norms, label smoothing 0.1, batch 1024, 110 epochs (the paper's
schedule length and batch, arXiv 2107.14795 appendix; the learning rate and
warm-up are this project's choice, not verified against the released
configuration). Nothing here was trained: the machines of this project have
no ImageNet.
"""

import tensorflow as tf

from keras_perceiver.models.perceiver_image_classifier import PerceiverImageClassifier
from training.augmentation import build_batch_augment
from training.tasks import Task, register
from training.tasks.image_classification import classification_loss, classification_metrics, uses_one_hot
from training.tasks.model_config import build_model as build_from_config

DEFAULT_PRESET = "vision_perceiver_fourier"
IMAGE_SIZE = 224
NUM_CLASSES = 1000
CENTRAL_FRACTION = 0.875
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def sizes(params):
    """(image size, number of classes): 224 and 1000 unless overridden (`image_size`, `num_classes`)."""
    overrides = params.get("overrides") or {}
    return int(overrides.get("image_size", IMAGE_SIZE)), int(overrides.get("num_classes", NUM_CLASSES))


def build_model(params):
    size, num_classes = sizes(params)
    overrides = {k: v for k, v in (params.get("overrides") or {}).items() if k != "image_size"}
    params = {**params, "preset": params.get("preset") or DEFAULT_PRESET, "overrides": overrides}
    return build_from_config(
        PerceiverImageClassifier, {}, params, image_shape=(size, size, 3), num_classes=num_classes
    )


def random_crop(image, seed, size):
    """Inception-style crop (area 8-100%, aspect 3/4-4/3) of a uint8 (H, W, 3) image, resized to size^2."""
    begin, crop_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        min_object_covered=0.1,
        aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(0.08, 1.0),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    crop = tf.slice(image, begin, crop_size)
    return tf.image.resize(crop, (size, size), method="bicubic", antialias=True)


def center_crop(image, size):
    """The central `CENTRAL_FRACTION` square of a uint8 (H, W, 3) image, resized to size^2."""
    shape = tf.shape(image)
    side = tf.cast(tf.cast(tf.minimum(shape[0], shape[1]), tf.float32) * CENTRAL_FRACTION, tf.int32)
    top, left = (shape[0] - side) // 2, (shape[1] - side) // 2
    crop = image[top : top + side, left : left + side]
    return tf.image.resize(crop, (size, size), method="bicubic", antialias=True)


def normalize(image):
    """float (H, W, 3) in 0..255 -> `(x / 255 - mean) / std` per channel."""
    return (tf.clip_by_value(image, 0.0, 255.0) / 255.0 - MEAN) / STD


def make_inputs(params):
    size, num_classes = sizes(params)
    one_hot = uses_one_hot(params)

    def to_inputs(example, training, seed):
        image = example["image"]
        image = random_crop(image, seed, size) if training else center_crop(image, size)
        label = tf.cast(example["label"], tf.int32)
        target = tf.one_hot(label, num_classes) if one_hot else label
        return {"images": tf.cast(normalize(image), tf.float32)}, target

    low = min((0.0 - m) / s for m, s in zip(MEAN, STD))
    high = max((1.0 - m) / s for m, s in zip(MEAN, STD))
    batch_augment = build_batch_augment(
        "images",
        (size, size),
        (low, high),
        flip=params["flip"],
        rand_augment=params["rand_augment"],
        mixup_alpha=params["mixup_alpha"],
        cutmix_alpha=params["cutmix_alpha"],
        seed=params["seed"],
    )
    return None, to_inputs, batch_augment


TASK = register(
    Task(
        name="imagenet",
        description="PerceiverImageClassifier presets on ImageNet (tfds:imagenet2012) or other tfds images.",
        dataset="tfds:imagenet2012",
        build_model=build_model,
        make_inputs=make_inputs,
        loss=classification_loss,
        metrics=classification_metrics,
        train_split="train[1%:]",
        validation_split="train[:1%]",
        eval_split="validation",
        cache=False,
        shuffle_buffer=10_000,
        defaults={
            "epochs": 110,
            "batch_size": 1024,
            "learning_rate": 2e-3,
            "optimizer": "lamb",
            "schedule": "constant_cosine",
            "warmup_steps": 1000,
            "weight_decay": 0.1,
            "clip_norm": 1.0,
            "label_smoothing": 0.1,
            "flip": True,
            "jit_compile": True,
            "mixed_precision": "mixed_bfloat16",
        },
        monitor="val_accuracy",
        output_name="logits",
        inputs="images: (B, 224, 224, 3) float32 = (RGB / 255 - ImageNet mean) / ImageNet std",
    )
)
