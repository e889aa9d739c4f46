"""keras_perceiver vs transformers (PyTorch) on CPU: same architecture, same weights, one process.

Tasks (each one measured with our model and the reference side by side, runs
interleaved so that a contended machine slows both alike):

- `language_inference`: the language perceiver (the published
  `deepmind/language-perceiver` configuration, 201,108,230 parameters, random
  weights) on batch 1 x 2048 bytes. The transformers model is saved with
  `save_pretrained` and converted with `from_transformers`.
- `language_train`: one training step of it (forward, cross-entropy on all
  2048 positions, backward, optimizer update; the same optimizer in both).
- `vision_inference` / `vision_train`: the Fourier-feature vision perceiver
  (transformers `PerceiverForImageClassificationFourier`, 224 x 224 pixels +
  64 Fourier bands, 512 x 1024 latents, 8 x 6 self-attends, 1000 classes).
  Ours is a `PerceiverIO` with an `ImagePreprocessor`, `TrainableQueries` and
  a `ClassificationPostprocessor`; its weights are copied from the
  transformers model with the converter's helpers.

Our model runs eagerly, in a `tf.function` and in a `tf.function` with
`jit_compile=True` (XLA); the reference runs in eager PyTorch under
`torch.no_grad()` and `torch.inference_mode()` (inference) or plainly
(training). Every variant is warmed up first (tracing / XLA compilation time
is reported apart), then the variants run in turn `--repeats` times; the
table gives the median and the minimum and the ratios ours / theirs of the
medians and of the minimums against the faster reference variant (< 1: ours
is faster). On a contended machine the minimum is the steadier statistic.

Usage:
    PYTHONPATH=. .venv/bin/python benchmarks/benchmark_vs_transformers.py
    PYTHONPATH=. .venv/bin/python benchmarks/benchmark_vs_transformers.py --quick
    PYTHONPATH=. .venv/bin/python benchmarks/benchmark_vs_transformers.py \
        --tasks language_inference --repeats 10 --tf_inter_op_threads 1

Prints a markdown table and writes the results (every timing, the settings,
the machine) as JSON to `benchmarks/results/` (git-ignored).
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time

TASKS = ("language_inference", "language_train", "vision_inference", "vision_train")
OURS_VARIANTS = ("eager", "function", "xla")
RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")

# The published `deepmind/language-perceiver` config (transformers' default
# PerceiverConfig leaves qk_channels/v_channels at None: 269M parameters).
LANGUAGE_CONFIG = dict(
    vocab_size=262,
    max_position_embeddings=2048,
    d_model=768,
    num_latents=256,
    d_latents=1280,
    num_blocks=1,
    num_self_attends_per_block=26,
    num_self_attention_heads=8,
    num_cross_attention_heads=8,
    qk_channels=256,
    v_channels=1280,
    cross_attention_widening_factor=1,
    self_attention_widening_factor=1,
    attention_probs_dropout_prob=0.1,
)
LANGUAGE_QUICK = dict(num_self_attends_per_block=4, max_position_embeddings=512)

# The published `deepmind/vision-perceiver-fourier` config.
VISION_CONFIG = dict(
    image_size=224,
    num_latents=512,
    d_latents=1024,
    d_model=261,
    num_blocks=8,
    num_self_attends_per_block=6,
    num_self_attention_heads=8,
    num_cross_attention_heads=1,
    qk_channels=None,
    v_channels=None,
    cross_attention_widening_factor=1,
    self_attention_widening_factor=1,
    num_labels=1000,
    attention_probs_dropout_prob=0.1,
)
VISION_QUICK = dict(num_blocks=1, num_self_attends_per_block=2)
VISION_QUICK_IMAGE_SIZE = 64


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", default=",".join(TASKS), help=f"comma-separated subset of {TASKS}")
    parser.add_argument(
        "--variants", default=",".join(OURS_VARIANTS), help=f"ours: subset of {OURS_VARIANTS}, or none"
    )
    parser.add_argument("--quick", action="store_true", help="small models and few repeats (a smoke run)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="timed runs per variant (default 5, quick 2)"
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs per variant before timing")
    parser.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd", help="training-step optimizer")
    parser.add_argument("--learning_rate", type=float, default=1e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tf_intra_op_threads", type=int, default=0, help="0: TensorFlow's default")
    parser.add_argument("--tf_inter_op_threads", type=int, default=0, help="0: TensorFlow's default")
    parser.add_argument("--torch_threads", type=int, default=0, help="0: PyTorch's default")
    parser.add_argument(
        "--bfloat16",
        action="store_true",
        help="language inference also in bfloat16: ours under mixed_bfloat16, theirs under torch.autocast; "
        "with the logit difference and top-1 agreement against float32 on real text",
    )
    parser.add_argument(
        "--gemm", action="store_true", help="also measure the machine's GEMM rates and the model's GFLOP/s"
    )
    parser.add_argument("--output", default=None, help="JSON path (default benchmarks/results/<time>.json)")
    args = parser.parse_args(argv)
    args.tasks = [t for t in args.tasks.split(",") if t]
    args.variants = [v for v in args.variants.split(",") if v and v != "none"]
    for task in args.tasks:
        if task not in TASKS:
            parser.error(f"unknown task {task!r}; expected a subset of {TASKS}")
    for variant in args.variants:
        if variant not in OURS_VARIANTS:
            parser.error(f"unknown variant {variant!r}; expected a subset of {OURS_VARIANTS}")
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    return args


def configure_frameworks(args):
    """Thread settings; must run before TensorFlow executes anything."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    import tensorflow as tf
    import torch

    if args.tf_intra_op_threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.tf_intra_op_threads)
    if args.tf_inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(args.tf_inter_op_threads)
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    return {
        "tf_intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "tf_inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "torch_threads": torch.get_num_threads(),
        "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(unset: on by default)"),
        "tf_xla_flags": os.environ.get("TF_XLA_FLAGS", ""),
    }


# ---------------------------------------------------------------- models


def build_language(quick, seed, workdir, bfloat16=False):
    """(torch PerceiverForMaskedLM, our PerceiverMaskedLM via from_transformers, inputs, config dict).

    With `bfloat16`, `data["ours_bfloat16"]` is the same checkpoint converted under `mixed_bfloat16`
    and `data["text"]` real text (this repository's README, UTF-8 bytes) in windows of the input length.
    """
    import numpy as np
    import torch
    from transformers import PerceiverConfig, PerceiverForMaskedLM

    from keras_perceiver.convert.from_transformers import from_transformers

    config_dict = dict(LANGUAGE_CONFIG, **(LANGUAGE_QUICK if quick else {}))
    torch.manual_seed(seed)
    theirs = PerceiverForMaskedLM(PerceiverConfig(**config_dict)).eval()
    path = os.path.join(workdir, "language_perceiver")
    theirs.save_pretrained(path)
    ours = from_transformers(path)
    length = config_dict["max_position_embeddings"]
    rng = np.random.default_rng(seed)
    token_ids = rng.integers(6, config_dict["vocab_size"], size=(1, length)).astype("int32")
    padding_mask = np.ones((1, length), dtype=bool)
    labels = rng.integers(0, config_dict["vocab_size"], size=(1, length)).astype("int64")
    data = {
        "ours": {"token_ids": token_ids, "padding_mask": padding_mask},
        "theirs": {
            "inputs": torch.from_numpy(token_ids.astype("int64")),
            "attention_mask": torch.from_numpy(padding_mask.astype("int64")),
        },
        "labels": labels,
    }
    if bfloat16:
        data["ours_bfloat16"] = from_transformers(path, dtype="mixed_bfloat16")
        # Inference only: weights stored in bfloat16 (no float32 -> bfloat16 cast of every weight per call).
        data["ours_bfloat16_weights"] = from_transformers(path, dtype="bfloat16")
        data["text"] = text_windows(length)
    return theirs, ours, data, config_dict


def text_windows(length, count=4):
    """`count` windows of `length` bytes of real text (README.md) as byte-level token ids (+6, as
    transformers' PerceiverTokenizer), for accuracy checks."""
    import numpy as np

    readme = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
    with open(readme, "rb") as f:
        data = np.frombuffer(f.read(), dtype=np.uint8).astype("int32") + 6
    windows = [data[i * length : (i + 1) * length] for i in range(count)]
    return np.stack([w for w in windows if len(w) == length])


def build_vision(quick, seed):
    """(torch PerceiverForImageClassificationFourier, our PerceiverIO with copied weights, inputs, config)."""
    import numpy as np
    import torch
    from transformers import PerceiverConfig, PerceiverForImageClassificationFourier

    config_dict = dict(VISION_CONFIG, **(VISION_QUICK if quick else {}))
    image_size = VISION_QUICK_IMAGE_SIZE if quick else config_dict["image_size"]
    config_dict["image_size"] = image_size
    torch.manual_seed(seed)
    theirs = PerceiverForImageClassificationFourier(PerceiverConfig(**config_dict))
    if image_size != 224:
        # The class hard-codes max_resolution=(224, 224); match it for a smaller image.
        theirs.perceiver.input_preprocessor.position_embeddings.max_resolution = (image_size, image_size)
    theirs.eval()
    ours = build_our_vision(config_dict, image_size)
    copy_vision_weights(theirs, ours)
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((1, image_size, image_size, 3)).astype("float32")
    labels = rng.integers(0, config_dict["num_labels"], size=(1,)).astype("int64")
    data = {
        "ours": {"inputs": images},
        "theirs": {"inputs": torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))},
        "labels": labels,
    }
    return theirs, ours, data, config_dict


def build_our_vision(config, image_size):
    """The Fourier vision perceiver from our layers, matching transformers' class."""
    from keras_perceiver.layers.trainable_queries import TrainableQueries
    from keras_perceiver.models.perceiver_io import PerceiverIO
    from keras_perceiver.postprocessors.classification_postprocessor import ClassificationPostprocessor
    from keras_perceiver.preprocessors.image_preprocessor import ImagePreprocessor

    # transformers: pixels + Fourier(64 bands, max_resolution 224, concat_pos, sin+cos), concatenated.
    preprocessor = ImagePreprocessor(
        prep_type="pixels",
        position_encoding_type="fourier",
        num_bands=64,
        max_resolution=(image_size, image_size),
        concat_pos=True,
        sine_only=False,
        name="image_preprocessor",
    )
    return PerceiverIO.from_hyperparameters(
        input_shape=(image_size, image_size, 3),
        num_latents=config["num_latents"],
        latent_dim=config["d_latents"],
        num_blocks=config["num_blocks"],
        num_self_attends_per_block=config["num_self_attends_per_block"],
        num_cross_attention_heads=config["num_cross_attention_heads"],
        num_self_attention_heads=config["num_self_attention_heads"],
        qk_channels=config["qk_channels"],
        v_channels=config["v_channels"],
        cross_attention_widening_factor=config["cross_attention_widening_factor"],
        self_attention_widening_factor=config["self_attention_widening_factor"],
        use_query_residual=True,
        # transformers PerceiverClassificationDecoder: 1 head, qk = v = d_latents ("kv"),
        # query residual, final Linear to num_labels, one trainable query of d_latents channels.
        decoder_num_cross_attention_heads=1,
        decoder_qk_channels=None,
        decoder_v_channels=None,
        decoder_cross_attention_widening_factor=1,
        decoder_use_query_residual=True,
        output_channels=config["num_labels"],
        query_mask_mode="ignore",
        attention_dropout=config["attention_probs_dropout_prob"],
        preprocessor=preprocessor,
        query_builder=TrainableQueries(1, config["d_latents"], name="classification_query"),
        postprocessor=ClassificationPostprocessor(name="classification"),
        name="vision_perceiver_fourier",
    )


def copy_vision_weights(theirs, ours):
    """Copy transformers' vision weights into ours with the converter's helpers."""
    from keras_perceiver.convert.from_transformers import (
        _assign,
        _load_cross_attention,
        _load_dense,
        _load_encoder_and_processor,
        _WeightReader,
    )

    reader = _WeightReader({k: v.detach().cpu().numpy() for k, v in theirs.state_dict().items()})
    _load_encoder_and_processor(ours, reader, "perceiver.")
    decoder = ours.get_layer("decoder")
    prefix = "perceiver.decoder.decoder"
    _load_cross_attention(decoder.cross_attention, reader, f"{prefix}.decoding_cross_attention")
    _load_dense(decoder.output_projection, reader, f"{prefix}.final_layer")
    query = ours.get_layer("classification_query")
    name = f"{prefix}.output_position_encodings.position_embeddings"
    _assign(query.position_embeddings, reader.pop(name), name)
    if reader.weights:
        raise ValueError(f"transformers weights left unconverted: {sorted(reader.weights)}")


def count_parameters(theirs, ours):
    return {
        "theirs": int(sum(p.numel() for p in theirs.parameters())),
        "ours": int(ours.count_params()),
    }


# ---------------------------------------------------------------- step functions


def their_logits(model, inputs):
    return model(**inputs).logits


def inference_functions(theirs, ours, data, variants):
    import tensorflow as tf
    import torch

    x_ours = {k: tf.constant(v) for k, v in data["ours"].items()}
    x_theirs = data["theirs"]

    def torch_no_grad():
        with torch.no_grad():
            return their_logits(theirs, x_theirs).numpy()

    def torch_inference_mode():
        with torch.inference_mode():
            return their_logits(theirs, x_theirs).numpy()

    fns = {"theirs: torch no_grad": torch_no_grad, "theirs: torch inference_mode": torch_inference_mode}
    graph = tf.function(lambda x: ours(x, training=False))
    xla = tf.function(lambda x: ours(x, training=False), jit_compile=True)
    ours_fns = {
        "eager": lambda: ours(x_ours, training=False).numpy(),
        "function": lambda: graph(x_ours).numpy(),
        "xla": lambda: xla(x_ours).numpy(),
    }
    for variant in variants:
        fns[f"ours: {variant}"] = ours_fns[variant]
    if "ours_bfloat16" in data:

        def torch_autocast():
            with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
                return their_logits(theirs, x_theirs).float().numpy()

        fns["theirs: torch autocast bf16"] = torch_autocast
        bf16 = data["ours_bfloat16"]
        graph_bf16 = tf.function(lambda x: bf16(x, training=False))
        xla_bf16 = tf.function(lambda x: bf16(x, training=False), jit_compile=True)
        fns["ours: bf16 function"] = lambda: graph_bf16(x_ours).numpy()
        fns["ours: bf16 xla"] = lambda: xla_bf16(x_ours).numpy()
        weights_bf16 = data["ours_bfloat16_weights"]
        graph_weights_bf16 = tf.function(lambda x: weights_bf16(x, training=False))
        fns["ours: bf16 weights function"] = lambda: graph_weights_bf16(x_ours).numpy()
    return fns


def bfloat16_accuracy(theirs, data):
    """Max |logit - float32 logit| and top-1 agreement with float32 on real text, ours and theirs in bf16."""
    import numpy as np
    import torch

    token_ids = data["text"]
    inputs = torch.from_numpy(token_ids.astype("int64"))
    with torch.inference_mode():
        expected = their_logits(theirs, {"inputs": inputs}).numpy()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            their_bf16 = their_logits(theirs, {"inputs": inputs}).float().numpy()
    ours_inputs = {"token_ids": token_ids, "padding_mask": np.ones_like(token_ids, bool)}
    ours_bf16 = np.asarray(data["ours_bfloat16"](ours_inputs), "float32")
    ours_bf16_weights = np.asarray(data["ours_bfloat16_weights"](ours_inputs), "float32")
    report = {"positions": int(token_ids.size), "max_abs_float32_logit": float(np.max(np.abs(expected)))}
    compared = {"ours_bf16": ours_bf16, "ours_bf16_weights": ours_bf16_weights, "theirs_bf16": their_bf16}
    for name, logits in compared.items():
        report[name] = {
            "max_abs_logit_difference": float(np.max(np.abs(logits - expected))),
            "top1_agreement": float(np.mean(np.argmax(logits, -1) == np.argmax(expected, -1))),
        }
    return report


def gemm_rates(repeats=5):
    """TensorFlow's GEMM rate (GFLOP/s, 2 per multiply-add, best of `repeats`) for square and the language
    perceiver's own shapes, float32 and bfloat16."""
    import tensorflow as tf

    shapes = {"1024^3": (1024, 1024, 1024), "2048^3": (2048, 2048, 2048), "4096^3": (4096, 4096, 4096)}
    shapes.update({"256x1280x1280": (256, 1280, 1280), "2048x768x768": (2048, 768, 768)})
    rates = {}
    for dtype in ("float32", "bfloat16"):
        for name, (m, k, n) in shapes.items():
            a = tf.cast(tf.random.normal((m, k)), dtype)
            b = tf.cast(tf.random.normal((k, n)), dtype)
            matmul = tf.function(lambda a, b: tf.matmul(a, b))
            matmul(a, b).numpy()
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                matmul(a, b).numpy()
                best = min(best, time.perf_counter() - start)
            rates[f"{dtype} {name}"] = round(2 * m * k * n / best / 1e9, 1)
    return rates


def language_flops(config):
    """FLOPs (2 per multiply-add) of one forward pass of the masked LM at batch 1, full length: the
    projections, the attention products and the MLPs of the encoder, the latent layers and the decoder,
    and the output projection (layer norms, softmaxes and biases left out)."""
    m, d_in = config["max_position_embeddings"], config["d_model"]
    n, d = config["num_latents"], config["d_latents"]
    qk, v = config["qk_channels"] or d, config["v_channels"] or d
    cross_w, self_w = config["cross_attention_widening_factor"], config["self_attention_widening_factor"]
    encoder = n * d * qk + m * d_in * (qk + v) + n * m * (qk + v) + n * v * d + 2 * n * d * d * cross_w
    latent = n * d * (2 * qk + v) + n * n * (qk + v) + n * v * d + 2 * n * d * d * self_w
    # transformers' masked-LM decoder: queries of width d_model, qk 8 * 32, v = d_model, MLP width d_model.
    qk_dec = 256
    decoder = m * d_in * qk_dec + n * d * (qk_dec + d_in) + m * n * (qk_dec + d_in) + 3 * m * d_in * d_in
    output = m * d_in * config["vocab_size"]
    blocks = config["num_blocks"] * config["num_self_attends_per_block"]
    return 2 * (encoder + blocks * latent + decoder + output)


def training_functions(theirs, ours, data, variants, optimizer_name, learning_rate):
    import keras
    import numpy as np
    import tensorflow as tf
    import torch

    x_ours = {k: tf.constant(v) for k, v in data["ours"].items()}
    y_ours = tf.constant(data["labels"].astype("int32"))
    x_theirs = data["theirs"]
    y_theirs = torch.from_numpy(data["labels"])

    theirs.train()
    if optimizer_name == "adam":
        torch_opt = torch.optim.Adam(theirs.parameters(), lr=learning_rate)
        keras_opt = keras.optimizers.Adam(learning_rate=learning_rate)
    else:
        torch_opt = torch.optim.SGD(theirs.parameters(), lr=learning_rate)
        keras_opt = keras.optimizers.SGD(learning_rate=learning_rate)
    variables = ours.trainable_variables
    keras_opt.build(variables)

    def torch_step():
        torch_opt.zero_grad(set_to_none=True)
        logits = their_logits(theirs, x_theirs)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y_theirs.reshape(-1))
        loss.backward()
        torch_opt.step()
        return float(loss.detach())

    def step(x, y):
        with tf.GradientTape() as tape:
            logits = ours(x, training=True)
            logits = tf.reshape(logits, (-1, logits.shape[-1]))
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.reshape(y, (-1,)), logits=logits)
            )
        grads = tape.gradient(loss, variables)
        keras_opt.apply_gradients(zip(grads, variables))
        return loss

    graph = tf.function(step)
    xla = tf.function(step, jit_compile=True)
    fns = {"theirs: torch": torch_step}
    ours_fns = {
        "eager": lambda: float(np.asarray(step(x_ours, y_ours))),
        "function": lambda: float(np.asarray(graph(x_ours, y_ours))),
        "xla": lambda: float(np.asarray(xla(x_ours, y_ours))),
    }
    for variant in variants:
        fns[f"ours: {variant}"] = ours_fns[variant]
    return fns


# ---------------------------------------------------------------- timing


def time_interleaved(fns, repeats, warmup, log=print):
    """Warm each function up, then run them in turn `repeats` times; returns per-name timings."""
    first_call = {}
    for name, fn in fns.items():
        for i in range(max(warmup, 1)):
            start = time.perf_counter()
            fn()
            elapsed = time.perf_counter() - start
            if i == 0:
                first_call[name] = elapsed
        log(f"  warm: {name}: first call {first_call[name]:.2f} s")
    times = {name: [] for name in fns}
    for r in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
        log(
            f"  round {r + 1}/{repeats}: "
            + ", ".join(f"{n.split(': ')[1]} {t[-1]:.3f}" for n, t in times.items())
        )
    return {
        name: {
            "median_s": statistics.median(ts),
            "min_s": min(ts),
            "times_s": ts,
            "first_call_s": first_call[name],
        }
        for name, ts in times.items()
    }


def parity(theirs, ours, data):
    import numpy as np
    import torch

    theirs.eval()
    with torch.no_grad():
        expected = their_logits(theirs, data["theirs"]).numpy()
    received = np.asarray(ours(data["ours"], training=False))
    return float(np.max(np.abs(expected - received))), float(np.max(np.abs(expected)))


# ---------------------------------------------------------------- report


def machine_info():
    import keras
    import tensorflow as tf
    import torch
    import transformers

    try:
        load = os.getloadavg()
    except OSError:
        load = None
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        cpu = names[0] if names else cpu
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "load_average_at_start": load,
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_backend": keras.backend.backend(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "platform": platform.platform(),
    }


def markdown_table(results, gemm=None):
    """One row per task and variant; ratios are ours / the fastest reference variant of the same precision
    (< 1: ours faster). With the model's FLOPs (language), its GFLOP/s by the minimum time, and with `gemm`
    that rate as a share of the best square GEMM rate of the same precision."""
    lines = [
        "| task | variant | median (s) | min (s) | ours / theirs (median) | ours / theirs (min) "
        "| first call (s) | GFLOP/s (min) | of best GEMM |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for task, result in results.items():
        timings = result["timings"]
        for name, t in timings.items():
            precision = "bf16" if "bf16" in name else "float32"
            same_precision = [n for n in timings if ("bf16" in n) == (precision == "bf16")]
            theirs = [timings[n] for n in same_precision if n.startswith("theirs")]
            ratios = ["", ""]
            if not name.startswith("theirs") and theirs:
                ratios = [
                    f"{t['median_s'] / min(x['median_s'] for x in theirs):.2f}",
                    f"{t['min_s'] / min(x['min_s'] for x in theirs):.2f}",
                ]
            rate, share = "", ""
            if "model_gflop" in result:
                achieved = result["model_gflop"] / t["min_s"]
                rate = f"{achieved:.0f}"
                if gemm:
                    dtype = "bfloat16" if precision == "bf16" else "float32"
                    best = max(r for key, r in gemm.items() if key.startswith(dtype) and "^3" in key)
                    share = f"{100 * achieved / best:.0f}%"
            lines.append(
                f"| {task} | {name} | {t['median_s']:.3f} | {t['min_s']:.3f} | {ratios[0]} | {ratios[1]} "
                f"| {t['first_call_s']:.2f} | {rate} | {share} |"
            )
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    settings = configure_frameworks(args)
    import gc

    import keras

    keras.utils.set_random_seed(args.seed)
    info = machine_info()
    print(f"machine: {info}\nsettings: {settings}\nargs: {vars(args)}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory() as workdir:
        for family in ("language", "vision"):
            tasks = [t for t in args.tasks if t.startswith(family)]
            if not tasks:
                continue
            start = time.perf_counter()
            if family == "language":
                theirs, ours, data, config = build_language(args.quick, args.seed, workdir, args.bfloat16)
            else:
                theirs, ours, data, config = build_vision(args.quick, args.seed)
            params = count_parameters(theirs, ours)
            max_diff, max_abs = parity(theirs, ours, data)
            print(
                f"{family}: built in {time.perf_counter() - start:.1f} s, parameters {params}, "
                f"max |ours - theirs| = {max_diff:.3g} (max |logit| {max_abs:.3g})",
                flush=True,
            )
            for task in tasks:
                print(f"{task}:", flush=True)
                extra = {}
                if task.endswith("inference"):
                    fns = inference_functions(theirs, ours, data, args.variants)
                    if "text" in data:
                        extra["bfloat16_accuracy"] = bfloat16_accuracy(theirs, data)
                        print(f"  bfloat16 accuracy: {extra['bfloat16_accuracy']}", flush=True)
                    if family == "language":
                        extra["model_gflop"] = language_flops(config) / 1e9
                else:
                    fns = training_functions(
                        theirs, ours, data, args.variants, args.optimizer, args.learning_rate
                    )
                results[task] = {
                    **extra,
                    "config": config,
                    "parameters": params,
                    "parity_max_abs_diff": max_diff,
                    "parity_max_abs_logit": max_abs,
                    "timings": time_interleaved(fns, args.repeats, args.warmup),
                }
                del fns
                gc.collect()
            del theirs, ours, data
            gc.collect()
    gemm = gemm_rates() if args.gemm else None
    table = markdown_table(results, gemm)
    print("\n" + table + "\n")
    if gemm:
        print(f"GEMM rates (GFLOP/s): {gemm}")
    for task, result in results.items():
        print(
            f"{task}: parity max |diff| {result['parity_max_abs_diff']:.3g}, "
            f"parameters {result['parameters']}"
        )
    output = args.output
    if output is None:
        os.makedirs(RESULTS_DIR, exist_ok=True)
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        output = os.path.join(RESULTS_DIR, f"benchmark-{'quick-' if args.quick else ''}{stamp}.json")
    payload = {
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "args": vars(args),
        "settings": settings,
        "machine": info,
        "load_average_at_end": os.getloadavg(),
        "results": results,
        "gemm_gflops": gemm,
        "table": table,
    }
    with open(output, "w") as f:
        json.dump(payload, f, indent=1)
    print(f"wrote {output}")
    return payload


if __name__ == "__main__":
    main()
