"""Audio classification with Perceiver IO: raw waveforms or log-mel spectrograms in, logits out."""

import keras

from keras_perceiver.models.perceiver_audio_classifier_presets import PERCEIVER_AUDIO_CLASSIFIER_PRESETS
from keras_perceiver.models.perceiver_backbone import PerceiverBackbone
from keras_perceiver.models.perceiver_backbone_presets import MULTIMODAL_STACK
from keras_perceiver.models.perceiver_classifier import PerceiverClassifier
from keras_perceiver.models.task_model import (
    rename_arguments,
    split_stack_arguments,
)
from keras_perceiver.preprocessors.audio_preprocessor import AudioPreprocessor
from keras_perceiver.preprocessors.image_preprocessor import ImagePreprocessor
from keras_perceiver.preprocessors.log_mel_spectrogram import LogMelSpectrogram
from keras_perceiver.validation import check_choice, check_positive_int

INPUT_TYPES = ("raw", "log_mel", "spectrogram")

# Latent stack of `from_hyperparameters`: the `audio_perceiver_raw_527` backbone's (Kinetics autoencoder's).
AUDIO_STACK = MULTIMODAL_STACK


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverAudioClassifier(PerceiverClassifier):
    """Audio (B, S) or spectrograms (B, F, N) -> logits (B, num_classes): a head on a `PerceiverBackbone`.

    Backbone front ends (its `input_preprocessor`; `from_hyperparameters`
    builds them from `input_type`):
    - `"raw"`: `AudioPreprocessor` cuts the waveform (input `"audio"`, (B,
      S)) into patches of `samples_per_patch` samples with 1-D Fourier (or
      learned) positions.
    - `"log_mel"`: `[LogMelSpectrogram, ImagePreprocessor]`: a log-mel
      spectrogram (B, F frames, N mel bins, 1) in dB is computed inside the
      model from the waveform (input `"audio"`), each example on its own,
      then treated like the `"spectrogram"` input.
    - `"spectrogram"`: `[Reshape((F, N, 1)), ImagePreprocessor]`: a given
      (B, F, N) spectrogram (input `"spectrogram"`, e.g. log-mel computed in
      the input pipeline) gets a channel axis and is cut into `patch_size` x
      `patch_size` patches over time x frequency
      (`ImagePreprocessor(prep_type="patches")`) with 2-D Fourier (or
      learned) positions over the (F / p, N / p) grid.
    Head: one learned query (width D) decoded by a `QueryDecoder` (query
    residual) to `num_classes` logits, as the image classifier. Presets:
    `audio_perceiver_raw_527` (see its description: built from the Perceiver
    IO multimodal audio front end; the Perceiver paper's AudioSet
    configuration could not be verified offline).

    Source: Perceiver (arXiv 2103.03206) section 4.3 (AudioSet from raw audio
    and from mel spectrograms); Perceiver IO (arXiv 2107.14795) section 4.3
    (audio patches); transformers `PerceiverAudioPreprocessor`,
    `PerceiverClassificationDecoder`.

    Args:
        backbone: a `PerceiverBackbone` whose input is the audio (B, S) or
            the spectrogram (B, F, N), e.g.
            `PerceiverBackbone.from_preset("audio_perceiver_raw_527")`.
        num_classes: int, K. Defaults to 1000 (the AudioSet preset: 527).
        decoder_num_cross_attention_heads: int. Defaults to 1.
        decoder_qk_channels, decoder_v_channels: int or None; None uses the
            latent width D. Default None.
        decoder_cross_attention_widening_factor: int. Defaults to 1.
        decoder_use_query_residual: bool, add the query to the attention
            output (transformers' classification decoder). Defaults to True.
        dtype: dtype policy of the head's layers (the backbone keeps its
            own).

    Inputs (a dict):
        audio: (B, S) float waveform (`"raw"`, `"log_mel"`), or
        spectrogram: (B, F, N) float spectrogram (`"spectrogram"`); the
            name is the backbone's `input_name`.

    Returns:
        (B, num_classes) logits.

    Raises:
        TypeError: for a `backbone` that is not a `PerceiverBackbone`.
        ValueError: for a non-positive `num_classes`.

    Example:
    >>> import keras
    >>> from keras_perceiver.models import PerceiverAudioClassifier, PerceiverBackbone
    >>> from keras_perceiver.preprocessors import AudioPreprocessor
    >>> backbone = PerceiverBackbone(input_shape=(64,), input_name="audio",
    ...     input_preprocessor=AudioPreprocessor(samples_per_patch=8, num_bands=4), num_latents=4,
    ...     latent_dim=8, num_self_attends_per_block=1, num_cross_attention_heads=1,
    ...     num_self_attention_heads=2)
    >>> model = PerceiverAudioClassifier(backbone, num_classes=3)
    >>> tuple(model({"audio": keras.ops.zeros((2, 64))}).shape)
    (2, 3)
    """

    presets = PERCEIVER_AUDIO_CLASSIFIER_PRESETS

    @classmethod
    def from_hyperparameters(
        cls,
        input_type="raw",
        num_samples=30_720,
        spectrogram_shape=None,
        num_classes=527,
        samples_per_patch=16,
        patch_size=1,
        position_encoding_type="fourier",
        num_bands=192,
        max_resolution=None,
        num_channels=64,
        project_pos_dim=None,
        sampling_rate=48_000,
        fft_length=1024,
        sequence_length=None,
        sequence_stride=480,
        num_mel_bins=128,
        min_freq=20.0,
        max_freq=None,
        dtype=None,
        name=None,
        **stack,
    ):
        """Build from one flat argument list (the form before the backbone/head split).

        Args:
            input_type: `"raw"` (default), `"log_mel"` or `"spectrogram"`.
            num_samples: int, S, samples per example (`"raw"`/`"log_mel"`).
                Defaults to 30,720.
            spectrogram_shape: tuple (F, N) of a given spectrogram
                (`"spectrogram"` only). Defaults to None.
            num_classes: int, K. Defaults to 527 (AudioSet).
            samples_per_patch: int, patch length of `"raw"`. Defaults to 16.
            patch_size: int, time x frequency patch size of spectrograms.
                Defaults to 1.
            position_encoding_type: `"fourier"` (default) or `"trainable"`.
            num_bands: int, Fourier bands per axis. Defaults to 192.
            max_resolution: int (raw) or tuple (F, N) (spectrograms) or None;
                None uses the sample count (raw) or the patch grid
                (spectrograms). Defaults to None.
            num_channels: int, width of learned positions. Defaults to 64.
            project_pos_dim: int or None, projection of the positions.
                Defaults to None.
            sampling_rate, fft_length, sequence_length, sequence_stride,
                num_mel_bins, min_freq, max_freq: `LogMelSpectrogram`
                arguments (`"log_mel"`; defaults 48,000 Hz, 1024, None, 480,
                128, 20.0, None).
            dtype: dtype policy of every layer (the log-mel spectrogram is
                computed in float32).
            name: optional model name.
            **stack: `PerceiverBackbone` latent-stack arguments (defaults:
                `AUDIO_STACK`, the `audio_perceiver_raw_527` backbone's) and
                `decoder_*` head arguments.

        Returns:
            A `PerceiverAudioClassifier`.

        Raises:
            ValueError: for an unknown `input_type`, non-positive sizes, a
                missing `spectrogram_shape`, S not a multiple of
                `samples_per_patch`, or a spectrogram (given or computed)
                whose F or N is not a multiple of `patch_size` (the message
                gives the frame count computed from S).
        """
        task_name = cls.__name__
        check_choice("input_type", input_type, INPUT_TYPES)
        for arg, value in (
            ("num_samples", num_samples),
            ("num_classes", num_classes),
            ("samples_per_patch", samples_per_patch),
            ("patch_size", patch_size),
            ("num_mel_bins", num_mel_bins),
        ):
            check_positive_int(arg, value)
        if isinstance(max_resolution, list):
            max_resolution = tuple(max_resolution)
        stack, head = split_stack_arguments(stack)
        positions = dict(
            position_encoding_type=position_encoding_type,
            num_bands=num_bands,
            max_resolution=max_resolution,
            num_channels=num_channels,
            project_pos_dim=project_pos_dim,
            dtype=dtype,
        )
        if input_type == "raw":
            input_name, input_shape = "audio", (num_samples,)
            preprocessors = AudioPreprocessor(
                samples_per_patch=samples_per_patch, name="audio_preprocessor", **positions
            )
        else:
            if input_type == "log_mel":
                log_mel = LogMelSpectrogram(
                    sampling_rate=sampling_rate,
                    fft_length=fft_length,
                    sequence_length=sequence_length,
                    sequence_stride=sequence_stride,
                    num_mel_bins=num_mel_bins,
                    min_freq=min_freq,
                    max_freq=max_freq,
                    name="log_mel_spectrogram",
                )
                input_name, input_shape = "audio", (num_samples,)
                grid = (log_mel.num_frames(num_samples), num_mel_bins)
                front = log_mel
            else:
                if spectrogram_shape is None or len(tuple(spectrogram_shape)) != 2:
                    raise ValueError(
                        f"{task_name}: input_type='spectrogram' needs `spectrogram_shape=(frames, "
                        f"mel_bins)`. Received: spectrogram_shape={spectrogram_shape!r}"
                    )
                input_name, input_shape = "spectrogram", tuple(int(n) for n in spectrogram_shape)
                grid = input_shape
                front = keras.layers.Reshape((*grid, 1), dtype=dtype, name="spectrogram_channel")
            for axis, size in zip(("frames", "mel bins"), grid):
                if size % patch_size:
                    hint = ""
                    if input_type == "log_mel":
                        hint = (
                            f" (computed from num_samples={num_samples}, sequence_stride={sequence_stride}: "
                            "frames = 1 + num_samples // sequence_stride)"
                        )
                    raise ValueError(
                        f"{task_name}: the spectrogram has {size} {axis}, not a multiple of patch_size="
                        f"{patch_size}. Received: spectrogram shape {tuple(grid)}{hint}"
                    )
            patches = ImagePreprocessor(
                prep_type="patches",
                spatial_downsample=patch_size,
                name="spectrogram_preprocessor",
                **positions,
            )
            preprocessors = [front, patches]
        backbone = PerceiverBackbone(
            input_shape=input_shape,
            input_name=input_name,
            input_preprocessor=preprocessors,
            **{**AUDIO_STACK, **stack},
            dtype=dtype,
        )
        head = rename_arguments(head)
        return cls(backbone=backbone, num_classes=num_classes, dtype=dtype, name=name, **head)
