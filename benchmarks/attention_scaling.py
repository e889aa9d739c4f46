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
chunked mode then runs `recomputed_attention`). `--cap_gb` runs each process
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
    parser.add_argument("--one", help=argparse.SUPPRESS)  # "log2,mode": run in this process
    args = parser.parse_args()
    if args.one:
        log2_size, mode = args.one.split(",")
        print(json.dumps(run_one(int(log2_size), mode, args.repeats, args.training)))
        return
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
                result = {"log2_m": log2_size, "mode": mode, "error": job.stderr.strip().splitlines()[-1:]}
            else:
                result = json.loads(job.stdout.strip().splitlines()[-1])
            print(json.dumps(result), flush=True)
            results.append(result)
    print("\n| M | mode | time (s) | extra peak memory (GB) | time slope | memory slope |")
    print("|---|---|---|---|---|---|")
    previous = {}
    for result in results:
        if "error" in result:
            print(f"| 2^{result['log2_m']} | {result['mode']} | failed: {result['error']} | | | |")
            continue
        slopes = ("", "")
        last = previous.get(result["mode"])
        if last is not None:
            steps = result["log2_m"] - last["log2_m"]
            slopes = tuple(
                f"{math.log2(max(result[key], 1e-9) / max(last[key], 1e-9)) / steps:.2f}"
                for key in ("seconds", "extra_peak_gb")
            )
        previous[result["mode"]] = result
        print(
            f"| 2^{result['log2_m']} | {result['mode']} | {result['seconds']:.3f} | "
            f"{result['extra_peak_gb']:.2f} | {slopes[0]} | {slopes[1]} |"
        )


if __name__ == "__main__":
    main()
