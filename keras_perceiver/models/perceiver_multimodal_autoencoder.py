"""Multimodal autoencoding with Perceiver IO: video + audio + label in, their reconstructions out."""

import keras
from keras import ops

from keras_perceiver.layers.multimodal_queries import MultimodalQueries
from keras_perceiver.models.perceiver_backbone import PerceiverBackbone, truncated_normal
from keras_perceiver.models.perceiver_backbone_presets import MULTIMODAL_STACK
from keras_perceiver.models.perceiver_multimodal_autoencoder_presets import (
    PERCEIVER_MULTIMODAL_AUTOENCODER_PRESETS,
)
from keras_perceiver.models.task_model import (
    PerceiverTaskModel,
    build_query_decoder,
    check_backbone,
    split_stack_arguments,
)
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


def _modality_layers(task_name, backbone):
    """(input shapes, audio preprocessor, video preprocessor) of a multimodal backbone, or a ValueError."""
    shapes = backbone.get_config()["input_shape"]
    preprocessors = backbone.input_preprocessors
    layer = preprocessors[0] if len(preprocessors) == 1 else None
    layers = layer.modalities if isinstance(layer, MultimodalPreprocessor) else {}
    if (
        not isinstance(shapes, dict)
        or sorted(shapes) != list(MODALITIES)
        or sorted(layers) != list(MODALITIES)
    ):
        raise ValueError(
            f"{task_name}: the backbone must take the inputs {list(MODALITIES)} (a dict `input_shape`) "
            "through one `MultimodalPreprocessor` of the same modalities. Received: "
            f"input_shape={shapes!r}, input_preprocessor={[type(p).__name__ for p in preprocessors]}"
        )
    if not isinstance(layers["audio"], AudioPreprocessor) or not isinstance(
        layers["video"], ImagePreprocessor
    ):
        raise ValueError(
            f"{task_name}: the backbone's audio and video modalities must be an `AudioPreprocessor` and an "
            f"`ImagePreprocessor`. Received: audio={type(layers['audio']).__name__}, "
            f"video={type(layers['video']).__name__}"
        )
    if len(shapes["video"]) != 4 or len(shapes["audio"]) != 1 or len(shapes["label"]) != 1:
        raise ValueError(
            f"{task_name}: expected input shapes video (T, H, W, C), audio (S,) and label (K,). "
            f"Received: input_shape={shapes!r}"
        )
    return {name: tuple(shape) for name, shape in shapes.items()}, layers["audio"], layers["video"]


@keras.saving.register_keras_serializable(package="keras_perceiver")
class PerceiverMultimodalAutoencoder(PerceiverTaskModel):
    """Video (B, T, H, W, 3), audio (B, S) and label (B, K) -> their reconstructions.

    Backbone: a `PerceiverBackbone` with the dict input `{"audio", "label",
    "video"}` and a `MultimodalPreprocessor` (video: `spatial_downsample` x
    `spatial_downsample` space-time patches + Fourier features of the patch
    grid; audio: patches of `samples_per_patch` samples + Fourier features;
    label: one input element; each padded with a learned per-modality vector
    to a common width and, with probability `mask_probs[modality]`, replaced
    by a learned mask token), encoded into latents and processed. Head:
    `MultimodalQueries` builds one Fourier query per video pixel (T, H, W)
    and per audio patch and one learned label query, padded to a common
    width; a `QueryDecoder` decodes them to `decoder_output_channels`, and
    `MultimodalPostprocessor` splits the outputs by modality, where Dense
    layers give the pixels' channels, `samples_per_patch` samples per audio
    patch and the label logits.

    What the head reads from the backbone: the video shape (T, H, W, C),
    the number of audio samples S and of classes K (its `input_shape`);
    `samples_per_patch`, the audio Fourier `num_bands` and `max_resolution`
    (None: S) of its `AudioPreprocessor`; the video Fourier `num_bands` and
    `max_resolution` (None: the patch grid the inputs use) of its video
    `ImagePreprocessor`. So the queries have the frequencies of the inputs.
    Its own arguments: `label_query_channels`, `query_min_padding_size`,
    `decoder_output_channels`, `subsample_outputs` and the `decoder_*`
    settings.

    A full reconstruction (T*H*W + S/P + 1 queries: 802,817 for the
    published model) is rarely decoded at once: `reconstruct(inputs,
    chunk_size)` encodes once and decodes the queries in chunks, with the
    same result as a one-shot decode. For training on a random subset of
    query points, build the model with `subsample_outputs=True`: it then
    also takes `video_indices` (B, O_v) into the T*H*W pixels and
    `audio_indices` (B, O_a) into the S/P audio patches, and returns
    (B, O_v, C) pixels and (B, O_a * P) samples.

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
        backbone: a `PerceiverBackbone` with `input_shape` `{"audio": (S,),
            "label": (K,), "video": (T, H, W, C)}` and a
            `MultimodalPreprocessor` of those modalities (an
            `AudioPreprocessor`, any label layer, an `ImagePreprocessor`), e.g.
            `PerceiverBackbone.from_preset("multimodal_perceiver")`.
        label_query_channels: int, width of the learned label query.
            Defaults to 1024.
        query_min_padding_size: int, padding channels of the widest query.
            Defaults to 2.
        decoder_output_channels: int, width of the decoder's output
            projection. Defaults to 512.
        subsample_outputs: bool, decode only `video_indices` and
            `audio_indices`. Defaults to False.
        decoder_num_cross_attention_heads: int. Defaults to 1.
        decoder_qk_channels, decoder_v_channels: int or None; None uses the
            query width. Default None.
        decoder_cross_attention_widening_factor: int. Defaults to 1.
        decoder_use_query_residual: bool. Defaults to False.
        dtype: dtype policy of the head's layers (the backbone keeps its
            own).

    Inputs (a dict):
        video: (B, T, H, W, C) float frames.
        audio: (B, S) float samples.
        label: (B, K) one-hot (or zeros when it is masked).
        video_indices, audio_indices: (B, O_v) and (B, O_a) int32, with
            `subsample_outputs`.

    Returns:
        A dict: `"video"` (B, T, H, W, C) (or (B, O_v, C)), `"audio"` (B, S)
        (or (B, O_a * P)), `"label"` (B, K) logits.

    Raises:
        TypeError: for a `backbone` that is not a `PerceiverBackbone`.
        ValueError: for a backbone without the three modalities, sizes that
            are not positive, and (from the layers) inputs of other shapes.

    Example:
    >>> import keras
    >>> from keras_perceiver.models import PerceiverMultimodalAutoencoder
    >>> model = PerceiverMultimodalAutoencoder.from_hyperparameters(num_frames=2, image_size=(8, 8),
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
        backbone,
        label_query_channels=1024,
        query_min_padding_size=2,
        decoder_output_channels=512,
        subsample_outputs=False,
        decoder_num_cross_attention_heads=1,
        decoder_qk_channels=None,
        decoder_v_channels=None,
        decoder_cross_attention_widening_factor=1,
        decoder_use_query_residual=False,
        dtype=None,
        **kwargs,
    ):
        config = {k: v for k, v in locals().items() if k not in ("self", "kwargs", "__class__")}
        check_backbone(self.__class__.__name__, backbone)
        check_positive_int("label_query_channels", label_query_channels)
        check_positive_int("decoder_output_channels", decoder_output_channels)
        shapes, audio, video = _modality_layers(self.__class__.__name__, backbone)
        video_shape, video_channels = shapes["video"][:3], shapes["video"][3]
        num_samples, num_classes = shapes["audio"][0], shapes["label"][0]
        audio_max_resolution = audio.max_resolution or num_samples
        video_max_resolution = tuple(video.max_resolution or video.index_dims)
        initializer = truncated_normal(backbone.initializer_range)

        # === Layers ===
        queries = MultimodalQueries(
            {
                "audio": {
                    "type": "fourier",
                    "index_dims": (num_samples // audio.samples_per_patch,),
                    "num_bands": audio.num_bands,
                    "max_resolution": (audio_max_resolution,),
                },
                "label": {"type": "trainable", "num_channels": label_query_channels},
                "video": {
                    "type": "fourier",
                    "index_dims": video_shape,
                    "num_bands": video.num_bands,
                    "max_resolution": video_max_resolution,
                },
            },
            min_padding_size=query_min_padding_size,
            initializer=initializer,
            dtype=dtype,
            name="decoder_queries",
        )
        decoder = build_query_decoder(
            backbone,
            num_cross_attention_heads=decoder_num_cross_attention_heads,
            qk_channels=decoder_qk_channels,
            v_channels=decoder_v_channels,
            cross_attention_widening_factor=decoder_cross_attention_widening_factor,
            use_query_residual=decoder_use_query_residual,
            output_channels=decoder_output_channels,
            query_mask_mode="ignore",
            dtype=dtype,
        )
        postprocessor = MultimodalPostprocessor(
            {
                "audio": AudioPostprocessor(
                    samples_per_patch=audio.samples_per_patch,
                    kernel_initializer=initializer,
                    dtype=dtype,
                    name="audio_postprocessor",
                ),
                "label": ProjectionPostprocessor(
                    num_classes, kernel_initializer=initializer, dtype=dtype, name="label_postprocessor"
                ),
                "video": ProjectionPostprocessor(
                    video_channels, kernel_initializer=initializer, dtype=dtype, name="video_postprocessor"
                ),
            },
            modality_sizes=queries.query_counts,
            output_index_shapes={"video": video_shape},
            dtype=dtype,
            name="multimodal_postprocessor",
        )
        label_logits = ClassificationPostprocessor(dtype=dtype, name="label_logits")

        # === Functional graph ===
        inputs = backbone.task_inputs()
        latents = backbone.encode(inputs)["latents"]
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
        self._set_backbone(backbone, config)
        self.video_shape = video_shape
        self.num_samples = num_samples
        self.samples_per_patch = audio.samples_per_patch
        self.num_classes = num_classes
        self.subsample_outputs = subsample_outputs

    @classmethod
    def from_hyperparameters(
        cls,
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
        mask_probs=None,
        mask_mode="always",
        seed=None,
        input_min_padding_size=4,
        initializer_range=0.02,
        dtype=None,
        name=None,
        **stack,
    ):
        """Build from one flat argument list (the form before the backbone/head split).

        Args:
            num_frames: int, T. Defaults to 16.
            image_size: tuple (H, W). Defaults to (224, 224).
            audio_samples_per_frame: int; S = num_frames * this. Defaults to
                1920 (48 kHz at 25 fps).
            samples_per_patch: int, P. Defaults to 16.
            num_classes: int, K. Defaults to 700.
            spatial_downsample: int, video patch size. Defaults to 4.
            temporal_downsample: int, frames per video patch. Defaults to 1.
            video_num_bands: int, Fourier bands of the video inputs and
                queries. Defaults to 32.
            video_max_resolution: tuple (T, H, W) or None, the resolution
                that sets the highest video frequency, for inputs and queries;
                None uses (num_frames, H, W). Defaults to (16, 56, 56) (the
                published model's, transformers' `(num_frames, image_size,
                image_size)`).
            audio_num_bands: int. Defaults to 192.
            audio_max_resolution: int or None; None uses S. Defaults to None.
            mask_probs: dict modality -> probability of replacing its inputs
                by the mask token. Defaults to `{"audio": 0.0, "label": 1.0,
                "video": 0.0}`.
            mask_mode: `"always"` (default: the reference masks on every
                call, which the classifier use of the published model needs)
                or `"training"`, see `MultimodalPreprocessor`.
            seed: int or None, seed of the mask draws for probabilities
                strictly between 0 and 1. Defaults to None.
            input_min_padding_size: int, padding channels of the widest input
                modality. Defaults to 4.
            initializer_range: float, stddev of the truncated normal
                initialization. Defaults to 0.02.
            dtype: dtype policy of every layer.
            name: optional model name.
            **stack: `PerceiverBackbone` latent-stack arguments (defaults:
                the `multimodal_perceiver` backbone's) and head arguments
                (`label_query_channels`, `query_min_padding_size`,
                `decoder_output_channels`, `subsample_outputs`, `decoder_*`).

        Returns:
            A `PerceiverMultimodalAutoencoder`.

        Raises:
            ValueError: for sizes that are not positive, an `image_size` that
                is not (H, W), a sample count that is not a multiple of
                `samples_per_patch`, a `temporal_downsample` that leaves fewer
                than 2 patches in time, mask probabilities outside [0, 1] or
                for unknown modalities.
        """
        for key in (
            "num_frames",
            "audio_samples_per_frame",
            "samples_per_patch",
            "num_classes",
            "temporal_downsample",
        ):
            check_positive_int(key, locals()[key])
        image_size = tuple(image_size)
        if len(image_size) != 2:
            raise ValueError(f"`image_size` must be (H, W). Received: image_size={image_size!r}")
        num_samples = num_frames * audio_samples_per_frame
        if num_samples % samples_per_patch:
            raise ValueError(
                "`num_frames * audio_samples_per_frame` must be a multiple of `samples_per_patch`. "
                f"Received: {num_frames} * {audio_samples_per_frame} = {num_samples}, "
                f"samples_per_patch={samples_per_patch}"
            )
        if num_frames // temporal_downsample < 2:
            # One patch in time makes the input position grid 2-D (as transformers does for optical flow),
            # while the decoder's pixel queries and `video_max_resolution` stay (T, H, W).
            raise ValueError(
                "`temporal_downsample` must leave at least 2 patches in time (num_frames // "
                f"temporal_downsample >= 2). Received: num_frames={num_frames}, "
                f"temporal_downsample={temporal_downsample}"
            )
        video_shape = (num_frames, *image_size)
        mask_probs = {"audio": 0.0, "label": 1.0, "video": 0.0} if mask_probs is None else dict(mask_probs)
        stack, head = split_stack_arguments(stack)
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
                    max_resolution=tuple(video_max_resolution or video_shape),
                    dtype=dtype,
                    name="video_preprocessor",
                ),
            },
            mask_probs=mask_probs,
            min_padding_size=input_min_padding_size,
            mask_mode=mask_mode,
            seed=seed,
            initializer=truncated_normal(initializer_range),
            dtype=dtype,
            name="multimodal_preprocessor",
        )
        backbone = PerceiverBackbone(
            input_shape={"audio": (num_samples,), "label": (num_classes,), "video": (*video_shape, 3)},
            input_preprocessor=preprocessor,
            **{**MULTIMODAL_STACK, **stack},
            initializer_range=initializer_range,
            dtype=dtype,
        )
        return cls(backbone=backbone, dtype=dtype, name=name, **head)

    def decode_in_chunks(self, inputs, chunk_size=65536):
        """`reconstruct`, named as in the other task models with many outputs (`ChunkedDecodingMixin`)."""
        return self.reconstruct(inputs, chunk_size=chunk_size)

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
            dict: `"video"` (B, T, H, W, C), `"audio"` (B, S), `"label"` (B, K)
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
        latents = self.backbone.encode({name: inputs[name] for name in MODALITIES})["latents"]
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
        batch_size = ops.shape(decoded)[0]
        video = ops.concatenate(pieces["video"], axis=1)
        return {
            "audio": ops.reshape(ops.concatenate(pieces["audio"], axis=1), (batch_size, -1)),
            "label": self.get_layer("label_logits")(pieces["label"][0]),
            "video": ops.reshape(video, (-1, *self.video_shape, video.shape[-1])),
        }
