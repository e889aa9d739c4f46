"""HiP vs Perceiver IO: one training step against the image size (HiP paper, efficiency table).

One training step (forward, sparse cross-entropy, backward, one AdamW update; `tf.function`, float32) at
batch 1 on square RGB images of side S, for:

- `pio`: `PerceiverImageClassifier.from_preset("vision_perceiver_fourier", input_shape=(S, S, 3))`, its
  attention as the library chooses (chunked over the keys once T x S > 2^22 scores per head);
- `pio_whole`: the same with `attention_chunk_size = 0` on every attention layer (the whole scores);
- `hip16`, `hip256`: `HiPClassifier.from_preset("hip_16" / "hip_256", input_shapes={"image": (S * S, 3)},
  num_classes=1000)` (the flattened pixels, learned positions of S * S rows), attention as the library
  chooses;
- `hip16_whole`, `hip256_whole`: HiP with `attention_chunk_size = 0`.

The models have no `attention_chunk_size` argument: it is set on their `PerceiverMultiHeadAttention` layers
after building (the layers read it at call time). Each (model, S) runs in a fresh process under an
address-space cap (`prlimit --as`) and a wall-clock limit, one at a time, so an out-of-memory run fails on its
own. Recorded:
step time (the better of `--repeats` steps after one warm-up step that includes tracing; one timed step when
the warm-up took longer than `--slow_warmup_s`), peak resident memory (the process' maximum RSS, and that
minus the RSS before the first step, model and inputs made), the parameter count, the attention path of
every attention call (shapes T x S per head, whole or chunked), and for a failure the error and the
allocation it asked for.

    python -m benchmarks.hip_efficiency --sizes=224,384,512,1024,2048 \
        --models=pio,pio_whole,hip16,hip16_whole,hip256 --results_dir=benchmarks/results/hip_efficiency

Writes one JSON file per run to `--results_dir`, prints the Markdown table of benchmarks/README.md and saves
the plot (`--plot`). `--report_only` rebuilds the table and the plot from the JSON files already there.
"""

import argparse
import glob
import json
import math
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = ("pio", "pio_whole", "hip16", "hip16_whole", "hip256", "hip256_whole")
LABELS = {
    "pio": "Perceiver IO (chunked)",
    "pio_whole": "Perceiver IO (whole)",
    "hip16": "HiP-16",
    "hip16_whole": "HiP-16 (whole)",
    "hip256": "HiP-256",
    "hip256_whole": "HiP-256 (whole)",
}
DTYPE_BYTES = {"float": 4, "float32": 4, "int32": 4, "double": 8, "float64": 8, "int64": 8, "half": 2,
               "float16": 2, "bfloat16": 2, "bool": 1, "uint8": 1, "int8": 1}
UNITS = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40,
         "K": 2**10, "M": 2**20, "G": 2**30}


def rss_gb():
    """Current resident set size of this process in GB (Linux /proc)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def fourier_input_floats(side, num_bands=64, channels=3):
    """Floats of the Perceiver IO Fourier input, S * S * (C + 2 * (2 * bands + 1)) (pixels + 2-D features).

    >>> fourier_input_floats(224)
    13095936
    """
    return side * side * (channels + 2 * (2 * num_bands + 1))


def parse_memory_ask(text):
    """The largest allocation an out-of-memory message names, in bytes (None if none is found).

    Understands TensorFlow's `OOM when allocating tensor with shape[...] and type T`, the allocator's
    `ran out of memory trying to allocate 1.23GiB`, its `Allocation of N exceeds 10% of free system memory`
    warnings, and numpy's `Unable to allocate 1.5 GiB`.

    >>> parse_memory_ask("OOM when allocating tensor with shape[1,512,4194304] and type float on CPU")
    8589934592
    >>> parse_memory_ask("Allocator (mklcpu) ran out of memory trying to allocate 2.00GiB")
    2147483648
    >>> parse_memory_ask("W tensorflow/...] Allocation of 4378853376 exceeds 10% of free system memory.")
    4378853376
    >>> parse_memory_ask("numpy.core._exceptions._ArrayMemoryError: Unable to allocate 1.50 GiB for an array")
    1610612736
    >>> parse_memory_ask("Killed") is None
    True
    """
    asks = []
    oom = r"OOM when allocating tensor with shape\s*\[([\d,\s]*)\] and type (\w+)"
    for shape, dtype in re.findall(oom, text):
        dims = [int(d) for d in shape.replace(" ", "").split(",") if d]
        asks.append(math.prod(dims) * DTYPE_BYTES.get(dtype, 4))
    for number in re.findall(r"rounded to (\d+)", text):
        asks.append(int(number))
    for value, unit in re.findall(r"trying to allocate ([\d.]+)\s*([KMGT]?i?B)\b", text):
        asks.append(int(float(value) * UNITS[unit.upper()]))
    for number in re.findall(r"Allocation of (\d+) exceeds", text):
        asks.append(int(number))
    for value, unit in re.findall(r"Unable to allocate ([\d.]+)\s*([KMGT]?i?B)", text):
        asks.append(int(float(value) * UNITS[unit.upper()]))
    return max(asks) if asks else None


def error_summary(text, limit=300):
    """The last failed allocation of a failed run's stderr, else its last exception line.

    >>> error_summary("OOM when allocating tensor with shape[1,8] and type float\\nHint: ... OOM happens")
    'OOM when allocating tensor with shape[1,8] and type float'
    >>> error_summary("Traceback\\nValueError: bad")
    'ValueError: bad'
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    memory = ("OOM when allocating", "ran out of memory", "bad_alloc", "Unable to allocate")
    keys = ("Error", "error", "OOM", "Killed", "Aborted", "terminate")
    for wanted in (memory, keys):  # the last failed allocation, else the last error line
        for line in reversed(lines):
            if any(key in line for key in wanted) and not line.startswith("File "):
                return line[:limit]
    return lines[-1][:limit] if lines else ""


def _set_chunking(model, chunk_size):
    from keras_perceiver.layers.multi_head_attention import PerceiverMultiHeadAttention

    layers = [layer for layer in model._flatten_layers() if isinstance(layer, PerceiverMultiHeadAttention)]
    for layer in layers:
        layer.attention_chunk_size = chunk_size
    return len(layers)


def build_model(name, side):
    if name.startswith("pio"):
        from keras_perceiver.models import PerceiverImageClassifier

        model = PerceiverImageClassifier.from_preset(
            "vision_perceiver_fourier", input_shape=(side, side, 3), num_classes=1000
        )
        inputs = {"images": ("image", (1, side, side, 3))}
    else:
        from keras_perceiver.models import HiPClassifier

        preset = "hip_16" if name.startswith("hip16") else "hip_256"
        model = HiPClassifier.from_preset(preset, input_shapes={"image": (side * side, 3)}, num_classes=1000)
        inputs = {"image": ("image", (1, side * side, 3))}
    if name.endswith("_whole"):
        _set_chunking(model, 0)
    return model, inputs


def run_one(name, side, repeats, slow_warmup_s):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_perceiver.layers import chunked_attention

    paths = {}
    resolve = chunked_attention.resolve_chunk_sizes

    def recording_resolve(num_queries, num_keys, attention_chunk_size):
        result = resolve(num_queries, num_keys, attention_chunk_size)
        query_chunk, key_chunk = result
        kind = "whole" if result == (None, None) else (
            f"key chunks of {key_chunk}" if query_chunk is None else f"query chunks of {query_chunk}"
        )
        paths[f"{num_queries}x{num_keys}"] = kind
        return result

    chunked_attention.resolve_chunk_sizes = recording_resolve  # record the path of every traced call

    keras.utils.set_random_seed(0)
    start = time.perf_counter()
    model, specs = build_model(name, side)
    build_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    inputs = {key: tf.constant(rng.random(shape, dtype=np.float32)) for key, (_, shape) in specs.items()}
    labels = tf.constant([7], dtype="int32")
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    optimizer = keras.optimizers.AdamW(learning_rate=1e-4)
    optimizer.build(model.trainable_variables)

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    baseline = rss_gb()
    start = time.perf_counter()
    loss = float(train_step(inputs, labels))
    warmup = time.perf_counter() - start
    times = []
    for _ in range(repeats if warmup <= slow_warmup_s else 1):
        start = time.perf_counter()
        loss = float(train_step(inputs, labels))
        times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6  # KB -> GB
    return {
        "model": name,
        "side": side,
        "ok": True,
        "step_seconds": min(times),
        "step_times": times,
        "warmup_seconds": warmup,
        "build_seconds": build_s,
        "rss_before_step_gb": round(baseline, 3),
        "peak_rss_gb": round(peak, 3),
        "extra_peak_gb": round(peak - baseline, 3),
        "parameters": int(model.count_params()),
        "loss": loss,
        "attention": paths,
        "input_floats": fourier_input_floats(side) if name.startswith("pio") else side * side * 3,
        "optimizer": "AdamW(lr=1e-4)",
    }


def _kill_group(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_isolated(name, side, args):
    """Run one configuration in a fresh process under `prlimit --as` and a wall limit; its result dict."""
    os.makedirs(args.results_dir, exist_ok=True)
    log_path = os.path.join(args.results_dir, f"{name}_{side}.log")
    command = [
        "prlimit", f"--as={int(args.memory_cap_gb * 1e9)}", "--",
        sys.executable, "-m", "benchmarks.hip_efficiency", f"--one={name},{side}",
        f"--repeats={args.repeats}", f"--slow_warmup_s={args.slow_warmup_s}",
    ]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "1"}
    start = time.perf_counter()
    with open(log_path, "w") as log:
        # prlimit execs the command, so the pid (and wait4's rusage) is the benchmark's own.
        process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=log, text=True,
                                   env=env, start_new_session=True)
        timer = threading.Timer(args.timeout_s, _kill_group, (process,))
        timer.start()
        stdout = process.stdout.read()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        timer.cancel()
    wall = time.perf_counter() - start
    with open(log_path) as log:
        stderr = log.read().replace(REPO_ROOT + os.sep, "")  # paths relative to the repository in the log
    with open(log_path, "w") as log:
        log.write(stderr)
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if process.returncode == 0 and lines:
        result = json.loads(lines[-1])
    else:
        timed_out = wall >= args.timeout_s
        ask = parse_memory_ask(stderr)
        result = {
            "model": name,
            "side": side,
            "ok": False,
            "returncode": process.returncode,
            "error": f"wall limit of {args.timeout_s} s reached" if timed_out else error_summary(stderr),
            "memory_ask_bytes": ask,
            "input_floats": fourier_input_floats(side) if name.startswith("pio") else side * side * 3,
        }
    result["process_peak_rss_gb"] = round(usage.ru_maxrss / 1e6, 3)
    result["wall_seconds"] = round(wall, 1)
    result["memory_cap_gb"] = args.memory_cap_gb
    result["load_average"] = os.getloadavg()
    with open(os.path.join(args.results_dir, f"{name}_{side}.json"), "w") as f:
        json.dump(result, f, indent=1)
    return result


def _attention_summary(paths):
    """The non-trivial attention calls: 'T x S: path' for those with over 2^20 scores per head."""
    items = []
    for shape, kind in paths.items():
        t, s = (int(v) if v != "None" else 0 for v in shape.split("x"))
        if t * s > 2**20:
            items.append(f"{t} x {s}: {kind}")
    return "; ".join(items) if items else "all whole (each under 2^20 scores)"


def cell(result):
    if result is None:
        return "not run", "", ""
    if not result["ok"]:
        ask = result.get("memory_ask_bytes")
        asked = f", asked for {ask / 1e9:.2f} GB" if ask else ""
        error = result["error"].split(" on /job:")[0].strip()[:90]  # TensorFlow's device suffix is noise here
        return f"**failed** ({error}{asked})", "", f"{result['process_peak_rss_gb']:.2f}"
    timed = "" if len(result["step_times"]) > 1 else " (1 step)"
    return (
        f"{result['step_seconds']:.2f}{timed}",
        f"{result['extra_peak_gb']:.2f}",
        f"{result['peak_rss_gb']:.2f}",
    )


def table(results, sizes, models):
    by_key = {(r["model"], r["side"]): r for r in results}
    lines = [
        "| model | S | step (s) | extra peak RSS (GB) | peak RSS (GB) | parameters "
        "| attention (T x S per head) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in models:
        for side in sizes:
            result = by_key.get((name, side))
            step, extra, peak = cell(result)
            params = f"{result['parameters']:,}" if result and result.get("ok") else ""
            attention = _attention_summary(result["attention"]) if result and result.get("ok") else ""
            lines.append(f"| {LABELS[name]} | {side} | {step} | {extra} | {peak} | {params} | {attention} |")
    return "\n".join(lines)


def plot(results, models, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=80)
    for index, name in enumerate(models):
        rows = sorted((r for r in results if r["model"] == name), key=lambda r: r["side"])
        if not rows:
            continue
        color = f"C{index}"
        ok = [r for r in rows if r["ok"]]
        failed = [r for r in rows if not r["ok"]]
        axes[0].plot([r["side"] for r in ok], [r["step_seconds"] for r in ok], "o-", color=color,
                     label=LABELS[name])
        axes[1].plot([r["side"] for r in ok], [r["peak_rss_gb"] for r in ok], "o-", color=color,
                     label=LABELS[name])
        for r in failed:  # failures: an x at the peak the process reached before it failed
            axes[1].plot(r["side"], max(r["process_peak_rss_gb"], 0.1), "x", color=color, markersize=10,
                         markeredgewidth=2)
            top = max([q["step_seconds"] for q in results if q["ok"]] or [1])
            axes[0].plot(r["side"], top * 1.5, "x", color=color, markersize=10, markeredgewidth=2)
    for axis, ylabel in zip(axes, ("training step (s), batch 1", "peak RSS (GB)"), strict=True):
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_xlabel("image side S (pixels)")
        axis.set_ylabel(ylabel)
        sides = sorted({r["side"] for r in results})
        axis.set_xticks(sides, [str(s) for s in sides])
        axis.minorticks_off()
        axis.grid(True, which="major", alpha=0.3)
    caps = {r.get("memory_cap_gb") for r in results}
    for cap in caps:
        if cap:
            axes[1].axhline(cap, color="gray", linestyle="--", linewidth=1)
    axes[0].set_title("step time (x: failed)")
    axes[1].set_title("peak memory (x: failed, at its peak; dashed: cap)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="224,384,512,1024,2048", help="image sides, comma-separated")
    parser.add_argument("--models", default="pio,pio_whole,hip16,hip16_whole,hip256",
                        help=f"comma-separated, of {','.join(MODELS)}")
    parser.add_argument("--skip", default="", help="model:side pairs not to run, e.g. pio_whole:2048")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--slow_warmup_s", type=float, default=120.0,
                        help="one timed step instead of --repeats when the warm-up took longer")
    parser.add_argument("--memory_cap_gb", type=float, default=20.0, help="address-space cap (prlimit --as)")
    parser.add_argument("--timeout_s", type=float, default=900.0, help="wall limit per configuration")
    parser.add_argument("--results_dir", default=os.path.join("benchmarks", "results", "hip_efficiency"))
    parser.add_argument("--plot", default=os.path.join("benchmarks", "hip_efficiency.png"))
    parser.add_argument("--report_only", action="store_true", help="table and plot from --results_dir")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # "model,side": run in this process
    args = parser.parse_args()
    if args.one:
        name, side = args.one.split(",")
        print(json.dumps(run_one(name, int(side), args.repeats, args.slow_warmup_s)), flush=True)
        return
    sizes = [int(s) for s in args.sizes.split(",")]
    models = args.models.split(",")
    unknown = set(models) - set(MODELS)
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}; expected some of {MODELS}")
    skip = {tuple(pair.split(":")) for pair in args.skip.split(",") if pair}
    if not args.report_only:
        for name in models:
            for side in sizes:
                if (name, str(side)) in skip:
                    continue
                print(json.dumps(run_isolated(name, side, args)), flush=True)
    results = []
    for path in sorted(glob.glob(os.path.join(args.results_dir, "*.json"))):
        with open(path) as f:
            result = json.load(f)
        if result["model"] in models and result["side"] in sizes:
            results.append(result)
    print()
    print(table(results, sizes, models))
    if args.plot and results:
        plot(results, models, args.plot)
        print(f"\nplot: {args.plot}")


if __name__ == "__main__":
    main()
