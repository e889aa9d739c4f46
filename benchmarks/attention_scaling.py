"""Encoder time and peak memory against the input size M: whole attention, chunked, and transformers.

The encoder of the issue's measurement: 64-channel inputs, 256 x 512 latents
(`CrossAttentionEncoder`, one head) and 2 self-attention layers
(`LatentProcessor`), batch 1, float32, `tf.function`. Each (M, mode) runs in a
fresh process, so that its peak resident memory is its own; the extra peak
memory is the process' maximum RSS after the run minus its RSS before the
first call (model built, inputs made). Modes: `whole` (attention_chunk_size=0),
`chunked` (the default: online softmax over key chunks above 2^22 scores),
`transformers` (the same encoder as transformers' `PerceiverModel` without
pre/postprocessors, torch, `no_grad`; inference only). `--training` times one
gradient of the encoder's output sum with respect to its weights instead (the
chunked mode then runs `recomputed_projection_attention`). `--cap_gb` runs each process
under `prlimit --as` (address space, in GB).

    python -m benchmarks.attention_scaling --sizes=16,18,20,21,22 --modes=whole,chunked
    python -m benchmarks.attention_scaling --sizes=16,18,20 --modes=whole,chunked --training

Prints one JSON line per run and, at the end, the table of benchmarks/README.md
with the log-log slopes of time and memory between successive sizes.
"""

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def rss_gb():
    """Current resident set size of this process in GB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def transformers_forward(inputs):
    """The same encoder in transformers (torch, 2 threads, `no_grad`): a callable of no arguments."""
    import torch
    from transformers import PerceiverConfig, PerceiverModel

    config = PerceiverConfig(
        num_latents=256,
        d_latents=512,
        d_model=64,
        num_blocks=1,
        num_self_attends_per_block=2,
        num_cross_attention_heads=1,
        num_self_attention_heads=8,
    )
    model = PerceiverModel(config).eval()
    tensor = torch.from_numpy(inputs)

    def forward():
        with torch.no_grad():
            return model(inputs=tensor).last_hidden_state.numpy()

    return forward


def keras_forward(inputs, chunk, training):
    """Ours in a `tf.function`: the encoder's outputs, or with `training` the gradients of their sum."""
    import tensorflow as tf

    from keras_perceiver.layers import CrossAttentionEncoder, LatentProcessor

    encoder = CrossAttentionEncoder(256, 512, num_cross_attention_heads=1, attention_chunk_size=chunk)
    processor = LatentProcessor(num_self_attends_per_block=2, num_self_attention_heads=8)
    inputs = tf.constant(inputs)
    processor(encoder(inputs[:, :8]))  # build
    weights = encoder.trainable_weights + processor.trainable_weights

    @tf.function
    def forward(x):
        if not training:
            return processor(encoder(x))
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(processor(encoder(x, training=True), training=True))
        return tf.add_n([tf.reduce_sum(g) for g in tape.gradient(loss, weights)])

    forward.get_concrete_function(tf.TensorSpec(inputs.shape, "float32"))
    return lambda: forward(inputs).numpy()


def run_one(log2_size, mode, repeats, training):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import numpy as np

    inputs = np.random.default_rng(0).normal(size=(1, 2**log2_size, 64)).astype("float32")
    if mode == "transformers":
        forward = transformers_forward(inputs)
    else:
        # None: chunked automatically above 2^22 scores per head.
        forward = keras_forward(inputs, 0 if mode == "whole" else None, training)
    baseline = rss_gb()
    start = time.perf_counter()
    forward()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        forward()
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KB -> GB
    return {
        "log2_m": log2_size,
        "mode": mode,
        "training": training,
        "seconds": min(times) if times else first,
        "first_call_seconds": first,
        "extra_peak_gb": round(peak - baseline, 3),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="16,18,20,21", help="log2 of M, comma-separated")
    parser.add_argument("--modes", default="whole,chunked")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--training", action="store_true", help="time a gradient instead of inference")
    parser.add_argument("--cap_gb", type=float, help="address-space cap of each run (prlimit --as), GB")
    parser.add_argument("--plot", help="write a log-log PNG of time and memory against M here")
    parser.add_argument(
        "--from_logs", help="comma-separated files of earlier runs' JSON lines: table and plot, no runs"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # "log2,mode": run in this process
    args = parser.parse_args()
    if args.one:
        log2_size, mode = args.one.split(",")
        print(json.dumps(run_one(int(log2_size), mode, args.repeats, args.training)))
        return
    results = read_logs(args.from_logs.split(",")) if args.from_logs else run_all(args)
    print_table(results)
    if args.plot:
        plot(results, args.plot)
        print(f"wrote {args.plot}")


def read_logs(paths):
    """The JSON-line results in the files `paths`, in order."""
    results = []
    for path in paths:
        with open(path) as f:
            results += [json.loads(line) for line in f if line.startswith("{")]
    return results


def plot(results, path):
    """Time and extra peak memory against M, log-log, one line per (mode, inference or training)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    series = {}
    for result in results:
        if "error" not in result:
            label = f"{result['mode']} ({'training' if result.get('training') else 'inference'})"
            series.setdefault(label, []).append(result)
    for label, rows in series.items():
        rows = sorted(rows, key=lambda row: row["log2_m"])
        sizes = [2 ** row["log2_m"] for row in rows]
        style = "--" if "training" in label else "-"
        axes[0].plot(sizes, [row["seconds"] for row in rows], style, marker="o", label=label)
        memory = [max(row["extra_peak_gb"], 1e-3) for row in rows]
        axes[1].plot(sizes, memory, style, marker="o", label=label)
    for axis, name in zip(axes, ("time (s)", "extra peak memory (GB)")):
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xlabel("M inputs (64 channels)")
        axis.set_ylabel(name)
        axis.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=8)
    figure.suptitle("Perceiver encoder (256 x 512 latents, 2 self-attention layers), batch 1, float32")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def run_all(args):
    """Each (mode, size) of `args` in its own process; their results."""
    results = []
    for mode in args.modes.split(","):
        for log2_size in map(int, args.sizes.split(",")):
            command = [sys.executable, "-m", "benchmarks.attention_scaling", f"--one={log2_size},{mode}"]
            command.append(f"--repeats={args.repeats}")
            if args.training:
                command.append("--training")
            if args.cap_gb:
                command = ["prlimit", f"--as={int(args.cap_gb * 2**30)}", *command]
            job = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True)
            if job.returncode != 0:
                error = job.stderr.strip().splitlines()[-1:]
                result = {"log2_m": log2_size, "mode": mode, "training": args.training, "error": error}
            else:
                result = json.loads(job.stdout.strip().splitlines()[-1])
            print(json.dumps(result), flush=True)
            results.append(result)
    return results


def mode_name(result):
    return f"{result['mode']}{', training' if result.get('training') else ''}"


def print_table(results):
    """The markdown table of `results`, with the log-log slopes between successive sizes of a mode."""
    print("\n| M | mode | time (s) | extra peak memory (GB) | time slope | memory slope |")
    print("|---|---|---|---|---|---|")
    previous = {}
    for result in results:
        if "error" in result:
            print(f"| 2^{result['log2_m']} | {mode_name(result)} | failed: {result['error']} | | | |")
            continue
        slopes = ("", "")
        key = (result["mode"], result.get("training", False))
        last = previous.get(key)
        if last is not None:
            steps = result["log2_m"] - last["log2_m"]
            slopes = tuple(
                f"{math.log2(max(result[field], 1e-9) / max(last[field], 1e-9)) / steps:.2f}"
                for field in ("seconds", "extra_peak_gb")
            )
        previous[key] = result
        print(
            f"| 2^{result['log2_m']} | {mode_name(result)} | {result['seconds']:.3f} | "
            f"{result['extra_peak_gb']:.2f} | {slopes[0]} | {slopes[1]} |"
        )


if __name__ == "__main__":
    main()
