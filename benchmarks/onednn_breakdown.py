"""Where the language perceiver's CPU time goes, by oneDNN primitive and shape, float32 against bfloat16.

TensorFlow runs its matmuls, batched matmuls, softmaxes and layout reorders
as oneDNN primitives; with `ONEDNN_VERBOSE=1` oneDNN logs each execution with
its shape and time (ms). This script runs the published language perceiver
(random weights, batch 1 x 2048 bytes, `tf.function`) once per precision in a
child process with that log on (one op at a time: `--inter_op_threads 1`),
sums the times of the timed passes by primitive and shape, and prints them side by side with each GEMM shape's
GFLOP/s: so the share of the pass spent in GEMMs, and the bfloat16 / float32
ratio each GEMM shape reaches, are read off one run. The log's own cost
makes the passes a little slower than without it.

- `float32`: the model converted from transformers in float32.
- `bfloat16`: the same weights stored in bfloat16 (dtype policy `bfloat16`,
  inference only), as "bf16 weights" in `benchmark_vs_transformers.py`.

Usage:
    PYTHONPATH=. .venv/bin/python benchmarks/onednn_breakdown.py [--repeats 3] [--output FILE.json]
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys
import tempfile
import time

PRECISIONS = ("float32", "bfloat16")
START, END = "ONEDNN_BREAKDOWN_START", "ONEDNN_BREAKDOWN_END"
GEMM_PRIMITIVES = ("inner_product", "matmul", "gemm_api")
INNER_PRODUCT = re.compile(r"mb(\d+)ic(\d+)oc(\d+)")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed passes per precision")
    parser.add_argument(
        "--inter_op_threads",
        type=int,
        default=1,
        help="TensorFlow inter-op threads; 1 (default) runs one op at a time, so that the logged times add "
        "up (with more, independent ops overlap and each one's time includes the others')",
    )
    parser.add_argument("--output", default=None, help="write the summary as JSON here")
    parser.add_argument("--child", choices=PRECISIONS, default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_child(precision, repeats, inter_op_threads):
    """Build the model, warm it up, and time `repeats` passes between the two markers (stdout)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import benchmark_vs_transformers as bench
    import tensorflow as tf

    if inter_op_threads:
        tf.config.threading.set_inter_op_parallelism_threads(inter_op_threads)

    from keras_perceiver.convert.from_transformers import from_transformers

    with tempfile.TemporaryDirectory() as workdir:
        _, ours, data, _ = bench.build_language(False, 0, workdir)
        if precision == "bfloat16":
            ours = from_transformers(os.path.join(workdir, "language_perceiver"), dtype="bfloat16")
        inputs = {key: tf.constant(value) for key, value in data["ours"].items()}
        forward = tf.function(lambda x: ours(x, training=False))
        for _ in range(3):
            forward(inputs).numpy()
        print(START, flush=True)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            forward(inputs).numpy()
            times.append(time.perf_counter() - start)
        print(END, flush=True)
        print(json.dumps({"wall_seconds": times}), flush=True)


def parse_log(text, repeats):
    """{(primitive, shape): [executions per pass, ms per pass]} of the lines between the markers."""
    totals = collections.defaultdict(lambda: [0, 0.0])
    inside = False
    for line in text.splitlines():
        if line.startswith(START):
            inside = True
        elif line.startswith(END):
            inside = False
        elif inside and line.startswith("onednn_verbose,") and ",exec," in line:
            fields = line.split(",")
            entry = totals[(fields[5], fields[-2])]
            entry[0] += 1 / repeats
            entry[1] += float(fields[-1]) / repeats
    return dict(totals)


def gemm_rate(shape, count, milliseconds):
    """GFLOP/s of an inner product (M x K x N from its shape), else None."""
    match = INNER_PRODUCT.fullmatch(shape)
    if not match or milliseconds <= 0:
        return None
    m, k, n = (int(g) for g in match.groups())
    return 2 * m * k * n * count / (milliseconds / 1e3) / 1e9


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        run_child(args.child, args.repeats, args.inter_op_threads)
        return
    summary = {}
    for precision in PRECISIONS:
        env = dict(os.environ, ONEDNN_VERBOSE="1", TF_CPP_MIN_LOG_LEVEL="3")
        command = [sys.executable, os.path.abspath(__file__), "--child", precision]
        command += ["--repeats", str(args.repeats), "--inter_op_threads", str(args.inter_op_threads)]
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
        wall = json.loads(result.stdout.strip().splitlines()[-1])["wall_seconds"]
        primitives = parse_log(result.stdout, args.repeats)
        summary[precision] = {"wall_ms": 1e3 * min(wall), "primitives": primitives}
        print(f"{precision}: min pass {1e3 * min(wall):.1f} ms (with the log on)", flush=True)
    keys = sorted(
        set().union(*(s["primitives"] for s in summary.values())),
        key=lambda key: -summary["float32"]["primitives"].get(key, [0, 0.0])[1],
    )
    print("| primitive | shape | per pass | float32 ms (GFLOP/s) | bfloat16 ms (GFLOP/s) | ratio |")
    print("|---|---|---:|---:|---:|---:|")
    for kind, shape in keys:
        cells, times = [], []
        for precision in PRECISIONS:
            count, milliseconds = summary[precision]["primitives"].get((kind, shape), [0, 0.0])
            rate = gemm_rate(shape, count, milliseconds)
            cells.append(f"{milliseconds:.1f}" + (f" ({rate:.0f})" if rate else ""))
            times.append(milliseconds)
        count = max(summary[p]["primitives"].get((kind, shape), [0, 0.0])[0] for p in PRECISIONS)
        ratio = f"{times[0] / times[1]:.2f}" if times[1] > 0 else ""
        print(f"| {kind} | {shape} | {count:.0f} | {cells[0]} | {cells[1]} | {ratio} |")
    for precision in PRECISIONS:
        primitives = summary[precision]["primitives"]
        gemm = sum(ms for (kind, _), (_, ms) in primitives.items() if kind in GEMM_PRIMITIVES)
        total = sum(ms for _, ms in primitives.values())
        summary[precision].update({"gemm_ms": gemm, "onednn_ms": total})
        print(
            f"{precision}: oneDNN {total:.1f} ms per pass, of which GEMMs ({', '.join(GEMM_PRIMITIVES)}) "
            f"{gemm:.1f} ms; min pass {summary[precision]['wall_ms']:.1f} ms"
        )
    float32, bfloat16 = summary["float32"], summary["bfloat16"]
    print(
        f"bfloat16 / float32 speed: GEMMs {float32['gemm_ms'] / bfloat16['gemm_ms']:.2f}x, "
        f"whole pass {float32['wall_ms'] / bfloat16['wall_ms']:.2f}x"
    )
    if args.output:
        for precision in PRECISIONS:
            primitives = summary[precision]["primitives"]
            summary[precision]["primitives"] = {f"{k} {shape}": v for (k, shape), v in primitives.items()}
        with open(args.output, "w") as file:
            json.dump(summary, file, indent=1)


if __name__ == "__main__":
    main()
