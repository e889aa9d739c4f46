"""Multimodal autoencoding with Perceiver IO: video + audio + label in, their reconstructions out."""

import keras
from keras import ops

from keras_perceiver.layers.multimodal_queries import MultimodalQueries
from keras_perceiver.models.core_layers import build_decoder, build_encoder_and_processor, initializer
from keras_perceiver.models.perceiver_multimodal_autoencoder_presets import (
    PERCEIVER_MULTIMODAL_AUTOENCODER_PRESETS,
)
from keras_perceiver.models.task_model import PerceiverTaskModel
from keras_perceiver.postprocessors.audio_postprocessor import AudioPostprocessor
from keras_perceiver.postprocessors.classification_postprocessor import ClassificationPostprocessor
from keras_perceiver.postprocessors.multimodal_postprocessor import MultimodalPostprocessor
from keras_perceiver.postprocessors.projection_postprocessor import ProjectionPostprocessor
from keras_perceiver.preprocessors.audio_preprocessor import AudioPreprocessor
from keras_perceiver.preprocessors.image_preprocessor import ImagePreprocessor
from keras_perceiver.preprocessors.multimodal_preprocessor import MultimodalPreprocessor
from keras_perceiver.preprocessors.one_hot_preprocessor import OneHotPreprocessor
from keras_perceiver.validation import check_positive_int

MODALITIES = ("audio", "label", "video")  # sorted: the order of the inputs and of the queries
DECODED = ("audio", "video")  # modalities with one query per output point (subsampled or chunked)


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverMultimodalAutoencoder(PerceiverTaskModel):
    """Video (B, T, H, W, 3), audio (B, S) and label (B, K) -> their reconstructions.

    Each modality is preprocessed (video: `spatial_downsample` x
    `spatial_downsample` space-time patches + Fourier features of the patch
    grid; audio: patches of `samples_per_patch` samples + Fourier features;
    label: one input element), padded with a learned per-modality vector to a
    common width and, with probability `mask_probs[modality]`, replaced by a
    learned mask token (`MultimodalPreprocessor`). The concatenation is
    encoded into latents and processed; `MultimodalQueries` builds one
    Fourier query per video pixel (T, H, W) and per audio patch and one
    learned label query, padded to a common width; a `QueryDecoder` decodes
    them to `decoder_output_channels`, and `MultimodalPostprocessor` splits
    the outputs by modality, where Dense layers give RGB per pixel,
    `samples_per_patch` samples per audio patch and the label logits.

    A full reconstruction (T*H*W + S/P + 1 queries: 802,817 for the
    published model) is rarely decoded at once: `reconstruct(inputs,
    chunk_size)` encodes once and decodes the queries in chunks, with the
    same result as a one-shot decode. For training on a random subset of
    query points, build the model with `subsample_outputs=True`: it then
    also takes `video_indices` (B, O_v) into the T*H*W pixels and
    `audio_indices` (B, O_a) into the S/P audio patches, and returns
    (B, O_v, 3) pixels and (B, O_a * P) samples.

    Classification: the published model masks the label input with
    probability 1 (`mask_probs["label"] = 1.0`), so the label input is always
    replaced by the mask token and the `"label"` output is a classifier's
    logits for the video and audio; feed zeros as the label.

    Fourier query positions follow the reference's subsampled decoding
    (coordinate i of an axis of size n at `-1 + 2 i / n`), the way the
    published model is evaluated (the reference's one-shot decode without
    subsampling does not run for this model).

    Source: Perceiver IO (arXiv 2107.14795) section 4.3 (Kinetics-700
    multimodal autoencoding); transformers
    `PerceiverForMultimodalAutoencoding`; DeepMind colab
    `video_autoencoding.ipynb`.

    Args:
        num_frames: int, T. Defaults to 16.
        image_size: tuple (H, W). Defaults to (224, 224).
        audio_samples_per_frame: int; S = num_frames * this. Defaults to 1920
            (48 kHz at 25 fps).
        samples_per_patch: int, P. Defaults to 16.
        num_classes: int, K. Defaults to 700.
        spatial_downsample: int, video patch size. Defaults to 4.
        temporal_downsample: int, frames per video patch. Defaults to 1.
        video_num_bands: int, Fourier bands of the video inputs and queries.
            Defaults to 32.
        video_max_resolution: tuple (T, H, W) or None, the resolution that
            sets the highest video frequency, for inputs and queries; None
            uses (num_frames, H, W). Defaults to (16, 56, 56) (the published
            model's, transformers' `(num_frames, image_size, image_size)`).
        audio_num_bands: int. Defaults to 192.
        audio_max_resolution: int or None; None uses S. Defaults to None.
        label_query_channels: int, width of the learned label query.
            Defaults to 1024.
        mask_probs: dict modality -> probability of replacing its inputs by
            the mask token. Defaults to `{"audio": 0.0, "label": 1.0,
            "video": 0.0}`.
        mask_mode: `"always"` (default: the reference masks on every call,
            which the classifier use of the published model needs) or
            `"training"` (mask only when training), see
            `MultimodalPreprocessor`.
        seed: int or None, seed of the mask draws for probabilities strictly
            between 0 and 1. Defaults to None.
        input_min_padding_size: int, padding channels of the widest input
            modality. Defaults to 4.
        query_min_padding_size: int, padding channels of the widest query.
            Defaults to 2.
        decoder_output_channels: int, width of the decoder's output
            projection. Defaults to 512.
        subsample_outputs: bool, decode only `video_indices` and
            `audio_indices`. Defaults to False.
        num_latents, latent_dim, num_blocks, num_self_attends_per_block,
            num_cross_attention_heads, num_self_attention_heads, qk_channels,
            v_channels, cross_attention_widening_factor,
            self_attention_widening_factor, use_query_residual, activation,
            dropout, attention_dropout: encoder/processor arguments (see
            `PerceiverIO`); defaults are the published model's.
        initializer_range: float, stddev of the truncated normal
            initialization. Defaults to 0.02.
        dtype: dtype policy of every layer.

    Inputs (a dict):
        video: (B, T, H, W, 3) float frames.
        audio: (B, S) or (B, S, 1) float samples.
        label: (B, K) one-hot (or zeros when it is masked).
        video_indices, audio_indices: (B, O_v) and (B, O_a) int32, with
            `subsample_outputs`.

    Returns:
        A dict: `"video"` (B, T, H, W, 3) (or (B, O_v, 3)), `"audio"` (B, S)
        (or (B, O_a * P)), `"label"` (B, K) logits.

    Raises:
        ValueError: for sizes that are not positive, an `image_size` that is
            not (H, W), mask probabilities outside [0, 1] or for unknown
            modalities, and (from the layers) inputs of other shapes.

    Example:
    >>> import keras
    >>> from keras_perceiver.models import PerceiverMultimodalAutoencoder
    >>> model = PerceiverMultimodalAutoencoder(num_frames=2, image_size=(8, 8),
    ...     audio_samples_per_frame=16, samples_per_patch=4, num_classes=5, video_num_bands=2,
    ...     video_max_resolution=None, audio_num_bands=3, label_query_channels=8,
    ...     decoder_output_channels=8, num_latents=4, latent_dim=8, num_self_attends_per_block=1,
    ...     num_self_attention_heads=2)
    >>> outputs = model({"video": keras.ops.ones((1, 2, 8, 8, 3)), "audio": keras.ops.ones((1, 32)),
    ...     "label": keras.ops.zeros((1, 5))})
    >>> {k: tuple(v.shape) for k, v in outputs.items()}
    {'audio': (1, 32), 'label': (1, 5), 'video': (1, 2, 8, 8, 3)}
    """

    presets = PERCEIVER_MULTIMODAL_AUTOENCODER_PRESETS

    def __init__(
        self,
        num_frames=16,
        image_size=(224, 224),
        audio_samples_per_frame=1920,
        samples_per_patch=16,
        num_classes=700,
        spatial_downsample=4,
        temporal_downsample=1,
        video_num_bands=32,
        video_max_resolution=(16, 56, 56),
        audio_num_bands=192,
        audio_max_resolution=None,
        label_query_channels=1024,
        mask_probs=None,
        mask_mode="always",
        seed=None,
        input_min_padding_size=4,
        query_min_padding_size=2,
        decoder_output_channels=512,
        subsample_outputs=False,
        num_latents=784,
        latent_dim=512,
        num_blocks=1,
        num_self_attends_per_block=8,
        num_cross_attention_heads=1,
        num_self_attention_heads=8,
        qk_channels=None,
        v_channels=None,
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
        for name in ("num_frames", "audio_samples_per_frame", "samples_per_patch", "num_classes"):
            check_positive_int(name, config[name])
        config["image_size"] = tuple(image_size)
        if len(config["image_size"]) != 2:
            raise ValueError(f"`image_size` must be (H, W). Received: image_size={image_size!r}")
        if video_max_resolution is not None:
            config["video_max_resolution"] = tuple(video_max_resolution)
        mask_probs = {"audio": 0.0, "label": 1.0, "video": 0.0} if mask_probs is None else dict(mask_probs)
        config["mask_probs"] = mask_probs
        num_samples = num_frames * audio_samples_per_frame
        if num_samples % samples_per_patch:
            raise ValueError(
                "`num_frames * audio_samples_per_frame` must be a multiple of `samples_per_patch`. "
                f"Received: {num_frames} * {audio_samples_per_frame} = {num_samples}, "
                f"samples_per_patch={samples_per_patch}"
            )
        video_shape = (num_frames, *config["image_size"])
        core_config = dict(config, cross_attention_shape_for_attention="kv")
        decoder_config = dict(
            core_config,
            decoder_num_heads=1,
            decoder_qk_channels=None,
            decoder_v_channels=None,
            decoder_widening_factor=1,
            decoder_use_query_residual=False,
            output_channels=decoder_output_channels,
            query_mask_mode="ignore",
        )
        video_max_resolution = config["video_max_resolution"] or video_shape

        # === Layers ===
        preprocessor = MultimodalPreprocessor(
            modalities={
                "audio": AudioPreprocessor(
                    samples_per_patch=samples_per_patch,
                    num_bands=audio_num_bands,
                    max_resolution=audio_max_resolution or num_samples,
                    dtype=dtype,
                    name="audio_preprocessor",
                ),
                "label": OneHotPreprocessor(num_classes=num_classes, dtype=dtype, name="label_preprocessor"),
                "video": ImagePreprocessor(
                    prep_type="patches",
                    spatial_downsample=spatial_downsample,
                    temporal_downsample=temporal_downsample,
                    num_bands=video_num_bands,
                    max_resolution=video_max_resolution,
                    dtype=dtype,
                    name="video_preprocessor",
                ),
            },
            mask_probs=mask_probs,
            min_padding_size=input_min_padding_size,
            mask_mode=mask_mode,
            seed=seed,
            initializer=initializer(config),
            dtype=dtype,
            name="multimodal_preprocessor",
        )
        encoder, processor = build_encoder_and_processor(core_config, dtype=dtype)
        queries = MultimodalQueries(
            {
                "audio": {
                    "type": "fourier",
                    "index_dims": (num_samples // samples_per_patch,),
                    "num_bands": audio_num_bands,
                    "max_resolution": (audio_max_resolution or num_samples,),
                },
                "label": {"type": "trainable", "num_channels": label_query_channels},
                "video": {
                    "type": "fourier",
                    "index_dims": video_shape,
                    "num_bands": video_num_bands,
                    "max_resolution": video_max_resolution,
                },
            },
            min_padding_size=query_min_padding_size,
            initializer=initializer(config),
            dtype=dtype,
            name="decoder_queries",
        )
        decoder = build_decoder(decoder_config, dtype=dtype)
        postprocessor = MultimodalPostprocessor(
            {
                "audio": AudioPostprocessor(
                    samples_per_patch=samples_per_patch,
                    kernel_initializer=initializer(config),
                    dtype=dtype,
                    name="audio_postprocessor",
                ),
                "label": ProjectionPostprocessor(
                    num_classes,
                    kernel_initializer=initializer(config),
                    dtype=dtype,
                    name="label_postprocessor",
                ),
                "video": ProjectionPostprocessor(
                    3, kernel_initializer=initializer(config), dtype=dtype, name="video_postprocessor"
                ),
            },
            modality_sizes=queries.query_counts,
            output_index_shapes={"video": video_shape},
            dtype=dtype,
            name="multimodal_postprocessor",
        )
        label_logits = ClassificationPostprocessor(dtype=dtype, name="label_logits")

        # === Functional graph ===
        inputs = {
            "audio": keras.Input(shape=(num_samples,), name="audio"),
            "label": keras.Input(shape=(num_classes,), name="label"),
            "video": keras.Input(shape=(*video_shape, 3), name="video"),
        }
        latents = processor(encoder(preprocessor(inputs)))
        output_indices = {}
        if subsample_outputs:
            for name in DECODED:
                indices = keras.Input(shape=(None,), dtype="int32", name=f"{name}_indices")
                inputs[f"{name}_indices"] = output_indices[name] = indices
        decoded = decoder(queries(latents, output_indices=output_indices), latents)
        outputs = postprocessor(decoded, output_indices=output_indices)
        outputs["label"] = label_logits(outputs["label"])
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self._perceiver_config = config

    def reconstruct(self, inputs, chunk_size=65536):
        """Encode once, decode every output point in chunks of `chunk_size` queries.

        The decoder treats each query on its own, so the result equals a
        one-shot decode (`model(inputs)` without `subsample_outputs`) while
        never building more than `chunk_size` queries at a time: the
        published model has 802,816 pixel queries of width 1026 per video.
        Works on models built with or without `subsample_outputs` (the
        `*_indices` inputs are not used).

        Args:
            inputs: dict with `"video"`, `"audio"` and `"label"` arrays.
            chunk_size: int, query points decoded per step. Defaults to 65536.

        Returns:
            dict: `"video"` (B, T, H, W, 3), `"audio"` (B, S), `"label"` (B, K)
            logits.

        Raises:
            ValueError: for a `chunk_size` that is not a positive integer or
                inputs without the three modalities.
        """
        check_positive_int("chunk_size", chunk_size)
        missing = sorted(set(MODALITIES) - set(inputs))
        if missing:
            raise ValueError(
                f"{self.__class__.__name__}.reconstruct: `inputs` must hold {list(MODALITIES)}. "
                f"Missing: {missing}"
            )
        preprocessor = self.get_layer("multimodal_preprocessor")
        latents = self.get_layer("processor")(
            self.get_layer("encoder")(preprocessor({name: inputs[name] for name in MODALITIES}))
        )
        queries = self.get_layer("decoder_queries")
        decoder = self.get_layer("decoder")
        postprocessor = self.get_layer("multimodal_postprocessor")
        pieces = {name: [] for name in MODALITIES}
        total = sum(queries.query_counts.values())
        for start in range(0, total, chunk_size):
            chunk = queries.chunk_indices(start, min(start + chunk_size, total))
            sizes = {name: len(indices) for name, indices in chunk.items()}
            decoded = decoder(queries(latents, output_indices=chunk), latents)
            outputs = postprocessor(decoded, modality_sizes=sizes)
            for name, size in sizes.items():
                if size:
                    pieces[name].append(ops.reshape(outputs[name], (ops.shape(decoded)[0], size, -1)))
        video_shape = queries.modalities["video"]["index_dims"]
        return {
            "audio": ops.reshape(ops.concatenate(pieces["audio"], axis=1), (ops.shape(decoded)[0], -1)),
            "label": self.get_layer("label_logits")(pieces["label"][0]),
            "video": ops.reshape(ops.concatenate(pieces["video"], axis=1), (-1, *video_shape, 3)),
        }
