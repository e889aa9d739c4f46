"""Audio classification with Perceiver IO: raw waveforms or log-mel spectrograms in, logits out."""

import keras
from keras import ops

from keras_perceiver.layers.trainable_queries import TrainableQueries
from keras_perceiver.models.core_layers import build_decoder, build_encoder_and_processor, initializer
from keras_perceiver.models.perceiver_audio_classifier_presets import PERCEIVER_AUDIO_CLASSIFIER_PRESETS
from keras_perceiver.models.task_model import PerceiverTaskModel
from keras_perceiver.postprocessors.classification_postprocessor import ClassificationPostprocessor
from keras_perceiver.preprocessors.audio_preprocessor import AudioPreprocessor
from keras_perceiver.preprocessors.image_preprocessor import ImagePreprocessor
from keras_perceiver.validation import check_choice, check_positive_int

INPUT_TYPES = ("raw", "log_mel", "spectrogram")
# Floor of the mel power before the log (-100 dB), as `keras.layers.MelSpectrogram`'s `min_power`.
LOG_MEL_FLOOR = 1e-10


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverAudioClassifier(PerceiverTaskModel):
    """Audio (B, S) or spectrograms (B, F, N) -> logits (B, num_classes).

    Three front ends (`input_type`):
    - `"raw"`: `AudioPreprocessor` cuts the waveform into patches of
      `samples_per_patch` samples with 1-D Fourier (or learned) positions.
    - `"log_mel"`: a log-mel spectrogram (B, F frames, N mel bins) is computed
      inside the model from the waveform: `keras.layers.MelSpectrogram`
      (centred STFT with a Hann window, power spectrum, mel filter bank; in
      float32 under mixed precision), then 10 log10 in dB with a floor of
      1e-10 (-100 dB). Keras' own dB option is not used: its `top_db`
      clipping is relative to the maximum over the whole batch, which would
      make each example's features depend on the others. F = 1 +
      S // `sequence_stride`. Then treated like the `"spectrogram"` input.
    - `"spectrogram"`: a given (B, F, N) spectrogram (e.g. log-mel computed in
      the input pipeline) is cut into `patch_size` x `patch_size` patches
      over time x frequency (`ImagePreprocessor(prep_type="patches")`) with
      2-D Fourier (or learned) positions over the (F / p, N / p) grid.
    Then encoder -> processor -> one learned query (width D, query residual)
    decoded to `num_classes` logits, as the image classifier. Presets:
    `audio_perceiver_raw_527` (see its description: built from the Perceiver
    IO multimodal audio front end; the Perceiver paper's AudioSet
    configuration could not be verified offline).

    Source: Perceiver (arXiv 2103.03206) section 4.3 (AudioSet from raw audio
    and from mel spectrograms); Perceiver IO (arXiv 2107.14795) section 4.3
    (audio patches); transformers `PerceiverAudioPreprocessor`,
    `PerceiverClassificationDecoder`.

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
        sampling_rate: int, Hz, for the mel scale (`"log_mel"`). Defaults
            to 48,000.
        fft_length: int, FFT size (`"log_mel"`). Defaults to 1024.
        sequence_length: int or None, STFT window length; None uses
            `fft_length`. Defaults to None.
        sequence_stride: int, STFT hop (`"log_mel"`). Defaults to 480
            (10 ms at 48 kHz).
        num_mel_bins: int, N (`"log_mel"`). Defaults to 128.
        min_freq, max_freq: float, mel filter bank range in Hz; `max_freq`
            None is `sampling_rate / 2`. Defaults to 20.0 and None.
        num_latents, latent_dim, num_blocks, num_self_attends_per_block,
            num_cross_attention_heads, num_self_attention_heads, qk_channels,
            v_channels, cross_attention_shape_for_attention,
            cross_attention_widening_factor, self_attention_widening_factor,
            use_query_residual, activation, dropout, attention_dropout:
            encoder/processor arguments (see `PerceiverIO`).
        initializer_range: float, stddev of the truncated normal
            initialization. Defaults to 0.02.
        dtype: dtype policy of every layer.

    Inputs (a dict):
        audio: (B, S) float waveform (`"raw"`, `"log_mel"`), or
        spectrogram: (B, F, N) float spectrogram (`"spectrogram"`).

    Returns:
        (B, num_classes) logits.

    Raises:
        ValueError: for an unknown `input_type`, non-positive sizes, a
            missing `spectrogram_shape`, S not a multiple of
            `samples_per_patch`, or a spectrogram (given or computed) whose F
            or N is not a multiple of `patch_size` (the message gives the
            frame count computed from S).

    Example:
    >>> import keras
    >>> from keras_perceiver.models import PerceiverAudioClassifier
    >>> model = PerceiverAudioClassifier(num_samples=64, num_classes=3, samples_per_patch=8,
    ...     num_bands=4, num_latents=4, latent_dim=8, num_self_attends_per_block=1,
    ...     num_self_attention_heads=2)
    >>> tuple(model({"audio": keras.ops.zeros((2, 64))}).shape)
    (2, 3)
    """

    presets = PERCEIVER_AUDIO_CLASSIFIER_PRESETS

    def __init__(
        self,
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
        num_latents=784,
        latent_dim=512,
        num_blocks=1,
        num_self_attends_per_block=8,
        num_cross_attention_heads=1,
        num_self_attention_heads=8,
        qk_channels=None,
        v_channels=None,
        cross_attention_shape_for_attention="kv",
        cross_attention_widening_factor=1,
        self_attention_widening_factor=1,
        use_query_residual=True,
        activation="gelu",
        dropout=0.0,
        attention_dropout=0.0,
        initializer_range=0.02,
        dtype=None,
        **kwargs,
    ):
        config = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        name = self.__class__.__name__
        check_choice("input_type", input_type, INPUT_TYPES)
        for arg in ("num_samples", "num_classes", "samples_per_patch", "patch_size", "num_mel_bins"):
            check_positive_int(arg, config[arg])
        if isinstance(max_resolution, (list, tuple)):
            config["max_resolution"] = tuple(max_resolution)
        if input_type == "spectrogram":
            if spectrogram_shape is None or len(tuple(spectrogram_shape)) != 2:
                raise ValueError(
                    f"{name}: input_type='spectrogram' needs `spectrogram_shape=(frames, mel_bins)`. "
                    f"Received: spectrogram_shape={spectrogram_shape!r}"
                )
            config["spectrogram_shape"] = tuple(int(n) for n in spectrogram_shape)
        elif spectrogram_shape is not None:
            config["spectrogram_shape"] = tuple(spectrogram_shape)
        decoder_config = dict(
            config,
            decoder_num_heads=1,
            decoder_qk_channels=None,
            decoder_v_channels=None,
            decoder_widening_factor=1,
            decoder_use_query_residual=True,
            output_channels=num_classes,
            query_mask_mode="ignore",
        )

        # === Layers ===
        mel_spectrogram = None
        if input_type == "raw":
            preprocessor = AudioPreprocessor(
                samples_per_patch=samples_per_patch,
                position_encoding_type=position_encoding_type,
                num_bands=num_bands,
                max_resolution=max_resolution,
                num_channels=num_channels,
                project_pos_dim=project_pos_dim,
                dtype=dtype,
                name="audio_preprocessor",
            )
        else:
            if input_type == "log_mel":
                mel_spectrogram = keras.layers.MelSpectrogram(
                    fft_length=fft_length,
                    sequence_stride=sequence_stride,
                    sequence_length=sequence_length,
                    sampling_rate=sampling_rate,
                    num_mel_bins=num_mel_bins,
                    min_freq=min_freq,
                    max_freq=max_freq,
                    power_to_db=False,  # its dB scale clips at the max over the whole batch (top_db)
                    dtype="float32",
                    name="log_mel_spectrogram",
                )
                frames = mel_spectrogram.compute_output_shape((None, num_samples))[-1]
                config_shape = (frames, num_mel_bins)
            else:
                config_shape = config["spectrogram_shape"]
            for axis, size in zip(("frames", "mel bins"), config_shape):
                if size % patch_size:
                    hint = ""
                    if input_type == "log_mel":
                        hint = (
                            f" (computed from num_samples={num_samples}, sequence_stride={sequence_stride}: "
                            "frames = 1 + num_samples // sequence_stride)"
                        )
                    raise ValueError(
                        f"{name}: the spectrogram has {size} {axis}, not a multiple of patch_size="
                        f"{patch_size}. Received: spectrogram shape {tuple(config_shape)}{hint}"
                    )
            preprocessor = ImagePreprocessor(
                prep_type="patches",
                spatial_downsample=patch_size,
                position_encoding_type=position_encoding_type,
                num_bands=num_bands,
                max_resolution=max_resolution,
                num_channels=num_channels,
                project_pos_dim=project_pos_dim,
                dtype=dtype,
                name="spectrogram_preprocessor",
            )
        encoder, processor = build_encoder_and_processor(config, dtype=dtype)
        queries = TrainableQueries(
            1, latent_dim, initializer=initializer(config), dtype=dtype, name="decoder_queries"
        )
        decoder = build_decoder(decoder_config, dtype=dtype)
        postprocessor = ClassificationPostprocessor(dtype=dtype, name="postprocessor")

        # === Functional graph ===
        if input_type == "spectrogram":
            inputs = {"spectrogram": keras.Input(shape=config["spectrogram_shape"], name="spectrogram")}
            x = preprocessor(ops.expand_dims(inputs["spectrogram"], -1))
        else:
            inputs = {"audio": keras.Input(shape=(num_samples,), name="audio")}
            if input_type == "raw":
                x = preprocessor(inputs["audio"])
            else:
                mel = ops.transpose(mel_spectrogram(inputs["audio"]), (0, 2, 1))  # (B, F, N) power
                spectrogram = 10.0 * ops.log10(ops.maximum(mel, LOG_MEL_FLOOR))  # dB, per example
                x = preprocessor(ops.expand_dims(spectrogram, -1))
        latents = processor(encoder(x))
        logits = postprocessor(decoder(queries(x), latents))
        super().__init__(inputs=inputs, outputs=logits, **kwargs)

        # === Config ===
        self._perceiver_config = config
