"""Tasks `hip_mae` and `hip_classification`: HiP pretrained by masked auto-encoding, then fine-tuned.

`hip_mae` (HiP, arXiv 2202.10890, appendix B): a `HierarchicalPerceiver`
reconstructs its inputs from the learned position embeddings (the MAE
queries) while a groupwise mask (`training.groupwise_masking`: the same
within-group positions in every group of the first block, a fresh mask per
example and epoch, seeded and stateless) hides part of them. The paper
gives neither the ratio, nor how a masked element is hidden, nor the loss;
this library's choices, each a flag of `training.train`:

- `--mask_ratio` (default 0.75, MAE's ratio for images): the fraction of
  the group positions masked;
- `--mae_hide` (default `padding_mask`): a masked element is hidden from
  the encoder through the modality's padding mask (block 0 does not attend
  to it, as MAE's encoder drops masked patches); `zero` sets its values
  to 0 (the data's mean after normalization) instead and the encoder sees
  it;
- `--mae_loss` (default `masked`): mean squared error over the masked
  elements only (MAE's); `all` scores every element.

`hip_classification`: a `HiPClassifier` (logits read at the processor) on
the same modalities, from scratch or from an `hip_mae` run
(`--init_from=<its model_dir>`: the embedder, the position embeddings and
the encoder and processor blocks are loaded by name; the label layers and
the head are new). `--architecture=perceiver_io` trains a Perceiver IO
classifier of similar size on the same inputs with the same command
(learned positions, one latent array), the comparison of the issue.

`hip_segmentation` (dense prediction, HiP section 4.3): a
`HierarchicalPerceiver` whose reconstruction head outputs `num_classes`
logits per input element (`output_channels`), trained with per-pixel
cross-entropy, scored by mean IoU over the classes (background and
object). `--architecture=perceiver_io` gives the same model with one group
in every block (`PERCEIVER_IO_GROUPS`): global cross-attention over all
pixels in the encoder, one latent array, and a decoder whose per-pixel
queries (the position embeddings) read that array: Perceiver IO's
encode-process-decode, built by the same code and trained by the same
command.

The data: `--dataset` names a reader with a modality view
(`training/tasks/modality_sets.py`), e.g. `fashion_mnist` as an unordered
set of 784 pixels. `--override=position_encoding_type=fourier` gives the
HiP every element's Fourier features of its original coordinates instead
of learned positions (HiP-Fourier).
"""

import keras
import tensorflow as tf

from keras_perceiver.models.hierarchical_perceiver import HierarchicalPerceiver
from keras_perceiver.models.hip_backbone import padding_mask_name
from keras_perceiver.models.hip_classifier import HiPClassifier
from keras_perceiver.models.perceiver_image_classifier import PerceiverImageClassifier
from training.groupwise_masking import GroupwiseMasking
from training.tasks import Task, register
from training.tasks.modality_sets import SEGMENTATION_PASTES, get_modality_set
from training.tasks.model_config import build_model as build_from_config

ARCHITECTURES = ("hip", "perceiver_io")
MAE_HIDE = ("padding_mask", "zero")
MAE_LOSSES = ("masked", "all")
RECONSTRUCTION = "input_reconstruction"
# A small U-Net HiP (3 blocks: 16 groups, one processor group, 16 groups), ~0.5M parameters.
SMALL_CONFIG = {
    "num_groups": (16, 1, 16),
    "num_self_attends_per_block": (1, 4, 1),
    "num_latents": (16, 64, 16),
    "latent_dim": (64, 128, 64),
    "num_cross_attention_heads": 1,
    "num_self_attention_heads": (2, 4, 2),
    "cross_attention_widening_factor": 1,
    "self_attention_widening_factor": 2,
    "num_embedding_channels": 32,
    "dropout": 0.0,
}
# Dense prediction's Perceiver IO: the same HiP with one group in every block (global attention).
PERCEIVER_IO_GROUPS = {"num_groups": (1, 1, 1), "num_latents": (64, 64, 64)}
# The Perceiver IO of similar size: one latent array as wide as HiP's processor, learned positions.
PERCEIVER_IO_CONFIG = {
    "prep_type": "pixels",
    "position_encoding_type": "trainable",
    "num_channels": 32,
    "num_latents": 64,
    "latent_dim": 128,
    "num_blocks": 1,
    "num_self_attends_per_block": 4,
    "num_cross_attention_heads": 1,
    "num_self_attention_heads": 4,
    "self_attention_widening_factor": 2,
    "cross_attention_widening_factor": 1,
    "dropout": 0.0,
}


def check_choice(name, value, choices):
    """Raise a ValueError naming the choices unless `value` is one of them."""
    if value not in choices:
        raise ValueError(f"`{name}` must be one of {list(choices)}. Received: {name}={value!r}")


def hip_config(params, modality_set):
    """The HiP's flat arguments: the small config, the data's shapes and, for Fourier, its coordinates."""
    config = {**SMALL_CONFIG, "input_shapes": modality_set.input_shapes}
    if params["overrides"].get("position_encoding_type") == "fourier":
        config["fourier_positions"] = {m: x.tolist() for m, x in modality_set.coordinates.items()}
    return config


def build_mae_model(params):
    modality_set = get_modality_set(params["dataset"])
    return build_from_config(HierarchicalPerceiver, hip_config(params, modality_set), params)


def build_classifier(params):
    check_choice("architecture", params["architecture"], ARCHITECTURES)
    modality_set = get_modality_set(params["dataset"])
    if params["architecture"] == "perceiver_io":
        (modality, (index_dim, channels)), = modality_set.input_shapes.items()
        return build_from_config(
            PerceiverImageClassifier,
            PERCEIVER_IO_CONFIG,
            params,
            image_shape=(index_dim, 1, channels),
            num_classes=modality_set.num_classes,
        )
    return build_from_config(
        HiPClassifier, hip_config(params, modality_set), params, num_classes=modality_set.num_classes
    )


def build_segmentation_model(params):
    """The per-pixel logits (B, M, K) of a `HierarchicalPerceiver` with `output_channels={m: K}`.

    The HiP is wrapped in a one-output Functional model (its outputs nest
    the reconstruction and the latents; Keras' compiled metrics need flat
    outputs with a target each).
    """
    check_choice("architecture", params["architecture"], ARCHITECTURES)
    modality_set = get_modality_set(params["dataset"])
    config = hip_config(params, modality_set)
    required = {}
    if params["architecture"] == "perceiver_io":
        if "num_groups" in params["overrides"]:
            raise ValueError(
                "--architecture=perceiver_io has one group in every block: drop --override=num_groups. "
                f"Received: num_groups={params['overrides']['num_groups']!r}"
            )
        config.update(PERCEIVER_IO_GROUPS)
        required["num_groups"] = PERCEIVER_IO_GROUPS["num_groups"]
    ((modality, shape),) = modality_set.input_shapes.items()
    hip_model = build_from_config(
        HierarchicalPerceiver,
        config,
        params,
        output_channels={modality: modality_set.num_classes},
        **required,
    )
    inputs = {modality: keras.Input(shape, name=modality)}
    # Every pixel is valid: the padding mask is all True (a nested call needs it as a tensor).
    valid = keras.ops.ones_like(inputs[modality][..., 0], dtype="bool")
    logits = hip_model({**inputs, padding_mask_name(modality): valid})[RECONSTRUCTION][modality]
    return keras.Model(inputs, logits, name=f"{hip_model.name}_segmentation")


def _reader_options(params):
    return get_modality_set(params["dataset"]).reader_options


def make_mae_inputs(params):
    check_choice("mae_hide", params["mae_hide"], MAE_HIDE)
    check_choice("mae_loss", params["mae_loss"], MAE_LOSSES)
    modality_set = get_modality_set(params["dataset"])
    num_groups = params["overrides"].get("num_groups", SMALL_CONFIG["num_groups"])[0]
    shapes = modality_set.input_shapes
    masking = GroupwiseMasking(num_groups, {m: shape[0] for m, shape in shapes.items()}, params["mask_ratio"])

    def to_inputs(example, training, seed):
        inputs = example["inputs"]
        if training and modality_set.augment is not None:
            inputs = modality_set.augment(inputs, seed)
        masks = masking(seed)
        features, targets, weights = {}, {}, {}
        for m, x in inputs.items():
            masked = masks[m]
            if params["mae_hide"] == "zero":
                features[m] = tf.where(masked[:, None], tf.zeros_like(x), x)
            else:
                features[m] = x
                features[padding_mask_name(m)] = tf.logical_not(masked)
            targets[m] = x
            scored = masked if params["mae_loss"] == "masked" else tf.ones_like(masked)
            weights[m] = tf.cast(scored, tf.float32)
        return features, {RECONSTRUCTION: targets}, {RECONSTRUCTION: weights}

    return modality_set.preprocess, to_inputs, None


def set_as_image(modalities):
    """One modality's set (..., M, C) as the Perceiver IO image input {"images": (..., M, 1, C)}.

    The Perceiver IO comparison of `hip_classification` reads the set through its learned image positions,
    one position per set element.

    Raises:
        ValueError: if `modalities` holds more or fewer than one modality.
    """
    if len(modalities) != 1:
        raise ValueError(f"The Perceiver IO comparison reads one modality, received {sorted(modalities)}.")
    (x,) = modalities.values()
    return {"images": x[..., None, :]}


def make_classification_inputs(params):
    modality_set = get_modality_set(params["dataset"])

    def to_inputs(example, training, seed):
        inputs = example["inputs"]
        if training and modality_set.augment is not None:
            inputs = modality_set.augment(inputs, seed)
        if params["architecture"] == "perceiver_io":
            inputs = set_as_image(inputs)
        return inputs, tf.cast(example["label"], tf.int32)

    return modality_set.preprocess, to_inputs, None


def make_segmentation_inputs(params):
    def to_inputs(example, training, seed):
        del training, seed
        return example["inputs"], example["label"]

    return get_modality_set(params["dataset"]).preprocess, to_inputs, None


def segmentation_loss(params):
    """Per-pixel sparse cross-entropy of the logits, averaged over the pixels of the batch."""
    del params
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def segmentation_metrics(params):
    """Mean IoU over the classes (accumulated over the whole split) and pixel accuracy."""
    return [
        keras.metrics.MeanIoU(
            num_classes=get_modality_set(params["dataset"]).num_classes, sparse_y_pred=False, name="mean_iou"
        ),
        keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy"),
    ]


def classification_serving(model, dataset=None):
    """Client signature of a `hip_classification` model: the reader's raw features, mapped inside the graph.

    The client sends what the data set's reader gives (`ModalitySet.client_inputs`,
    e.g. Fashion-MNIST's `image` uint8 (B, 28, 28, 1)); the serving graph
    applies the modality view (`ModalitySet.preprocess`: normalization and,
    for the unordered set, the fixed pixel permutation) to every example
    and returns logits, probabilities and the top-5 classes.

    Args:
        model: the trained classifier (HiP, or the Perceiver IO comparison
            with its `images` input).
        dataset: str, the data set it was trained on. Defaults to the task's.

    Returns:
        (ClientInputs, outputs, metadata) for `training.export`.
    """
    from keras_perceiver.export import ClientInputs, classification_outputs

    modality_set = get_modality_set(dataset or CLASSIFICATION_TASK.dataset)
    specs = {
        name: tf.TensorSpec((None, *shape), tf.as_dtype(dtype), name=name)
        for name, (shape, dtype) in modality_set.client_inputs.items()
    }
    as_image = isinstance(model.input, dict) and "images" in model.input

    def to_model_inputs(inputs):
        def one(example):
            return modality_set.preprocess({**example, "label": tf.zeros((), tf.int64)})["inputs"]

        modalities = tf.vectorized_map(one, inputs)
        return set_as_image(modalities) if as_image else modalities

    (input_key,) = specs
    metadata = {
        "kind": "classification",
        "dataset": modality_set.name,
        "split": "test",
        "reader_options": dict(modality_set.reader_options),
        "input_key": input_key,
        "label_key": "label",
        "output_key": "logits",
        "class_names": list(modality_set.class_names),
    }
    client = ClientInputs(specs, to_model_inputs, {"kind": "modality_set", "dataset": modality_set.name})
    return client, classification_outputs(top_k=5), metadata


def mae_loss(params):
    """Per modality, the mean squared error over the scored elements: sum(w * error) / sum(w).

    Nested like the model's outputs (`{"input_reconstruction": {m: ...}}`);
    the latents have no loss.
    """
    modalities = get_modality_set(params["dataset"]).input_shapes
    return {
        RECONSTRUCTION: {
            m: keras.losses.MeanSquaredError(reduction="mean_with_sample_weight", name=f"mse_{m}")
            for m in modalities
        }
    }


def sparse_classification_loss(params):
    del params
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


_TRAINING_DEFAULTS = {
    "epochs": 10,
    "batch_size": 128,
    "learning_rate": 1e-3,
    "optimizer": "adamw",
    "schedule": "constant_cosine",
    "warmup_steps": 200,
    "weight_decay": 1e-2,
    "clip_norm": 1.0,
    "jit_compile": True,
}

MAE_TASK = register(
    Task(
        name="hip_mae",
        description="HierarchicalPerceiver masked auto-encoding (groupwise masking) of a modality dict.",
        dataset="fashion_mnist",
        build_model=build_mae_model,
        make_inputs=make_mae_inputs,
        loss=mae_loss,
        metrics=lambda params: None,
        reader_options=_reader_options,
        defaults=dict(_TRAINING_DEFAULTS),
        monitor="val_loss",
        monitor_mode="min",
        output_name="outputs",
        inputs="<m>: (B, M_m, C_m) float32 per modality; <m>_padding_mask: (B, M_m) bool (False = masked)",
    )
)

CLASSIFICATION_TASK = register(
    Task(
        name="hip_classification",
        description="HiPClassifier (or Perceiver IO, --architecture) on modalities, optionally from MAE.",
        dataset="fashion_mnist",
        build_model=build_classifier,
        make_inputs=make_classification_inputs,
        loss=sparse_classification_loss,
        metrics=lambda params: [keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
        reader_options=_reader_options,
        defaults=dict(_TRAINING_DEFAULTS),
        monitor="val_accuracy",
        output_name="logits",
        inputs="<m>: (B, M_m, C_m) float32 per modality (the data set's modality view)",
        serving=classification_serving,
    )
)

SEGMENTATION_TASK = register(
    Task(
        name="hip_segmentation",
        description="HierarchicalPerceiver per-pixel logits (dense prediction), mean IoU.",
        dataset="tuxpaint_segmentation",
        build_model=build_segmentation_model,
        make_inputs=make_segmentation_inputs,
        loss=segmentation_loss,
        metrics=segmentation_metrics,
        reader_options=_reader_options,
        split_options={split: {"examples_per_stamp": n} for split, n in SEGMENTATION_PASTES.items()},
        defaults={**_TRAINING_DEFAULTS, "batch_size": 32},
        monitor="val_mean_iou",
        monitor_mode="max",
        output_name="logits",
        inputs="<m>: (B, M_m, C_m) float32, the pixels of the data set's modality view",
    )
)
