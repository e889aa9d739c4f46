"""Where the time goes: the language / vision perceiver by layer type, ours vs transformers.

Times each stage of the forward pass on its own, with the same weights and the
stage's real inputs, in both frameworks, runs interleaved (min and median of
`--repeats`):

- language: `embed` (token + position embedding), `encoder` (cross-attention
  2048 bytes -> 256 latents + MLP), `self_attention_x26` (the processor),
  `self_attention_1` (one layer), `decoder` (2048 queries -> latents), `logits`
  (tied embedding projection).
- vision: `preprocess` (pixels + Fourier features), `encoder` (50,176 pixels ->
  512 latents), `self_attention_x48`, `self_attention_1`, `decoder`.

Then micro-benchmarks of the matmuls and attention einsums of those stages,
in TensorFlow (eager, tf.function, XLA) and PyTorch.

Usage:
    PYTHONPATH=. .venv/bin/python benchmarks/profile_layers.py --model language
    PYTHONPATH=. .venv/bin/python benchmarks/profile_layers.py --model language --micro_only
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import benchmark_vs_transformers as bench  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=("language", "vision"), default="language")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--variants", default="eager,function,xla")
    parser.add_argument("--stages", default="", help="comma-separated subset of stages (default all)")
    parser.add_argument("--micro", action="store_true", help="also run the micro-benchmarks")
    parser.add_argument("--micro_only", action="store_true")
    parser.add_argument("--tf_intra_op_threads", type=int, default=0)
    parser.add_argument("--tf_inter_op_threads", type=int, default=0)
    parser.add_argument("--torch_threads", type=int, default=0)
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    args.variants = [v for v in args.variants.split(",") if v]
    args.stages = [s for s in args.stages.split(",") if s]
    return args


def run_interleaved(fns, repeats):
    for fn in fns.values():
        fn()
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: {"min_s": min(t), "median_s": statistics.median(t)} for name, t in times.items()}


def _ours_variants(call, args_, variants):
    """Eager / tf.function / XLA versions of `call(*args_)`, each returning numpy."""
    import tensorflow as tf

    graph = tf.function(call)
    xla = tf.function(call, jit_compile=True)
    table = {
        "eager": lambda: call(*args_).numpy(),
        "function": lambda: graph(*args_).numpy(),
        "xla": lambda: xla(*args_).numpy(),
    }
    return {f"ours {v}": table[v] for v in variants}


def language_stages(theirs, ours, data):
    """{stage: (torch callable, ours callable, ours args)} with precomputed stage inputs."""
    import tensorflow as tf
    import torch

    text = ours.get_layer("text_preprocessor")
    encoder = ours.get_layer("encoder")
    processor = ours.get_layer("processor")
    decoder_queries = ours.get_layer("decoder_queries")
    decoder = ours.get_layer("decoder")
    ids = tf.constant(data["ours"]["token_ids"])
    mask = tf.constant(data["ours"]["padding_mask"])
    emb = text(ids)
    latents0 = encoder(emb, padding_mask=mask)
    latents = processor(latents0)
    queries = decoder_queries(emb)
    hidden = decoder(queries, latents)

    p = theirs.perceiver
    t_ids = data["theirs"]["inputs"]
    t_mask = data["theirs"]["attention_mask"]
    with torch.inference_mode():
        t_emb = p.input_preprocessor(t_ids)[0]
        t_lat_in = p.embeddings(batch_size=1)
        ext = (1.0 - t_mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
        t_lat0 = p.encoder.cross_attention(t_lat_in, inputs=t_emb, inputs_mask=ext)[0]
        t_lat = t_lat0
        for layer in p.encoder.self_attends:
            t_lat = layer(t_lat)[0]
        t_query = p.decoder.decoder_query(t_emb)
        t_hidden = p.decoder(t_query, z=t_lat).logits

    def torch_fn(fn):
        def run():
            with torch.inference_mode():
                return fn()

        return run

    def t_processor():
        h = t_lat0
        for layer in p.encoder.self_attends:
            h = layer(h)[0]
        return h

    n = len(processor.self_attends)
    return {
        "embed": (torch_fn(lambda: p.input_preprocessor(t_ids)[0]), lambda x: text(x), (ids,)),
        "encoder": (
            torch_fn(lambda: p.encoder.cross_attention(t_lat_in, inputs=t_emb, inputs_mask=ext)[0]),
            lambda e, m: encoder(e, padding_mask=m),
            (emb, mask),
        ),
        f"self_attention_x{n}": (torch_fn(t_processor), lambda h: processor(h), (latents0,)),
        "self_attention_1": (
            torch_fn(lambda: p.encoder.self_attends[0](t_lat0)[0]),
            lambda h: processor.self_attends[0](h),
            (latents0,),
        ),
        "decoder": (
            torch_fn(lambda: p.decoder(p.decoder.decoder_query(t_emb), z=t_lat).logits),
            lambda e, z: decoder(decoder_queries(e), z),
            (emb, latents),
        ),
        "logits": (
            torch_fn(
                lambda: theirs.embedding_decoder(t_hidden, embedding_layer=p.input_preprocessor.embeddings)
            ),
            lambda h: text(h, reverse=True),
            (hidden,),
        ),
        "_queries": queries,
    }


def vision_stages(theirs, ours, data):
    import tensorflow as tf
    import torch

    pre = ours.get_layer("image_preprocessor")
    encoder = ours.get_layer("encoder")
    processor = ours.get_layer("processor")
    query = ours.get_layer("classification_query")
    decoder = ours.get_layer("decoder")
    images = tf.constant(data["ours"]["inputs"])
    x = pre(images)
    latents0 = encoder(x)
    latents = processor(latents0)

    p = theirs.perceiver
    t_images = data["theirs"]["inputs"]
    with torch.inference_mode():
        t_x = p.input_preprocessor(t_images)[0]
        t_lat_in = p.embeddings(batch_size=1)
        t_lat0 = p.encoder.cross_attention(t_lat_in, inputs=t_x)[0]
        t_lat = t_lat0
        for _ in range(p.config.num_blocks):
            for layer in p.encoder.self_attends:
                t_lat = layer(t_lat)[0]

    def torch_fn(fn):
        def run():
            with torch.inference_mode():
                return fn()

        return run

    def t_processor():
        h = t_lat0
        for _ in range(p.config.num_blocks):
            for layer in p.encoder.self_attends:
                h = layer(h)[0]
        return h

    n = len(processor.self_attends) * processor.num_blocks
    return {
        "preprocess": (torch_fn(lambda: p.input_preprocessor(t_images)[0]), lambda i: pre(i), (images,)),
        "encoder": (
            torch_fn(lambda: p.encoder.cross_attention(t_lat_in, inputs=t_x)[0]),
            lambda e: encoder(e),
            (x,),
        ),
        f"self_attention_x{n}": (torch_fn(t_processor), lambda h: processor(h), (latents0,)),
        "self_attention_1": (
            torch_fn(lambda: p.encoder.self_attends[0](t_lat0)[0]),
            lambda h: processor.self_attends[0](h),
            (latents0,),
        ),
        "decoder": (
            torch_fn(lambda: p.decoder(p.decoder.decoder_query(t_x), z=t_lat).logits),
            lambda e, z: decoder(query(e), z),
            (x, latents),
        ),
    }


def micro_benchmarks(model, variants, repeats):
    """Matmuls and attention einsums at the shapes of the model's stages: TF vs torch."""
    import numpy as np
    import tensorflow as tf
    import torch

    rng = np.random.default_rng(0)

    def arrays(*shapes):
        return [rng.standard_normal(s).astype("float32") for s in shapes]

    if model == "language":
        cases = {
            "proj 256x1280 @ 1280x1280 (v/out/mlp)": ("mm", (256, 1280), (1280, 1280)),
            "proj 256x1280 @ 1280x256 (q/k)": ("mm", (256, 1280), (1280, 256)),
            "proj 2048x768 @ 768x1280 (enc v)": ("mm", (2048, 768), (768, 1280)),
            "proj 2048x768 @ 768x768 (dec out/mlp)": ("mm", (2048, 768), (768, 768)),
            "logits 2048x768 @ 768x262": ("mm", (2048, 768), (768, 262)),
            "scores self bthd,bshd->bhts (256,8,32)": ("scores", (1, 256, 8, 32), (1, 256, 8, 32)),
            "context self bhts,bshd->bthd (8,256,256)x(256,8,160)": (
                "context",
                (1, 8, 256, 256),
                (1, 256, 8, 160),
            ),
            "scores enc (256,8,32)x(2048,8,32)": ("scores", (1, 256, 8, 32), (1, 2048, 8, 32)),
            "context enc (8,256,2048)x(2048,8,160)": ("context", (1, 8, 256, 2048), (1, 2048, 8, 160)),
            "scores dec (2048,8,32)x(256,8,32)": ("scores", (1, 2048, 8, 32), (1, 256, 8, 32)),
            "context dec (8,2048,256)x(256,8,96)": ("context", (1, 8, 2048, 256), (1, 256, 8, 96)),
        }
    else:
        cases = {
            "proj 512x1024 @ 1024x1024 (qkvo/mlp)": ("mm", (512, 1024), (1024, 1024)),
            "proj 50176x261 @ 261x261 (enc k/v)": ("mm", (50176, 261), (261, 261)),
            "scores self (512,8,128)x(512,8,128)": ("scores", (1, 512, 8, 128), (1, 512, 8, 128)),
            "context self (8,512,512)x(512,8,128)": ("context", (1, 8, 512, 512), (1, 512, 8, 128)),
            "scores enc (512,1,261)x(50176,1,261)": ("scores", (1, 512, 1, 261), (1, 50176, 1, 261)),
            "context enc (1,512,50176)x(50176,1,261)": ("context", (1, 1, 512, 50176), (1, 50176, 1, 261)),
        }
    equations = {"scores": "bthd,bshd->bhts", "context": "bhts,bshd->bthd"}
    results = {}
    for name, (kind, sa, sb) in cases.items():
        a, b = arrays(sa, sb)
        ta, tb = tf.constant(a), tf.constant(b)
        pa, pb = torch.from_numpy(a), torch.from_numpy(b)
        if kind == "mm":
            tf_call = tf.matmul
            flops = 2 * sa[0] * sa[1] * sb[1]

            def torch_call(x, y):
                return x @ y
        else:
            eq = equations[kind]

            def tf_call(x, y, eq=eq):
                return tf.einsum(eq, x, y)

            if kind == "scores":
                flops = 2 * sa[1] * sb[1] * sa[2] * sa[3]

                def torch_call(x, y):  # transformers: permute to (b, h, t, d), matmul
                    return torch.matmul(x.permute(0, 2, 1, 3), y.permute(0, 2, 3, 1))
            else:
                flops = 2 * sa[1] * sa[2] * sa[3] * sb[3]

                def torch_call(x, y):
                    return torch.matmul(x, y.permute(0, 2, 1, 3)).permute(0, 2, 1, 3).contiguous()

        fns = {}

        def torch_run(x=pa, y=pb, f=torch_call):
            with torch.inference_mode():
                return f(x, y)

        fns["torch"] = torch_run
        fns.update(_ours_variants(tf_call, (ta, tb), variants))
        r = run_interleaved(fns, repeats)
        for v in r.values():
            v["gflops_at_min"] = flops / v["min_s"] / 1e9
        results[name] = r
        print(
            f"{name}: "
            + ", ".join(
                f"{k} {v['min_s'] * 1e3:.2f} ms ({v['gflops_at_min']:.0f} GF/s)" for k, v in r.items()
            ),
            flush=True,
        )
    return results


def main(argv=None):
    args = parse_args(argv)
    settings = bench.configure_frameworks(args)
    print(f"settings: {settings}", flush=True)
    out = {"settings": settings, "args": vars(args), "load_average_at_start": os.getloadavg()}
    if not args.micro_only:
        with tempfile.TemporaryDirectory() as workdir:
            if args.model == "language":
                theirs, ours, data, _ = bench.build_language(args.quick, 0, workdir)
                stages = language_stages(theirs, ours, data)
            else:
                theirs, ours, data, _ = bench.build_vision(args.quick, 0)
                stages = vision_stages(theirs, ours, data)
        stages = {k: v for k, v in stages.items() if not k.startswith("_")}
        results = {}
        for stage, (torch_fn, call, call_args) in stages.items():
            if args.stages and stage not in args.stages:
                continue
            fns = {"torch": torch_fn}
            fns.update(_ours_variants(call, call_args, args.variants))
            r = run_interleaved(fns, args.repeats)
            results[stage] = r
            base = r["torch"]["min_s"]
            print(
                f"{stage}: "
                + ", ".join(
                    f"{k} {v['min_s'] * 1e3:.1f} ms (x{v['min_s'] / base:.2f})" for k, v in r.items()
                ),
                flush=True,
            )
        out["stages"] = results
        print(
            "\n| stage | torch min (ms) | "
            + " | ".join(f"ours {v} min (ms) / ratio" for v in args.variants)
            + " |"
        )
        print("|---|---:|" + "---:|" * len(args.variants))
        for stage, r in results.items():
            base = r["torch"]["min_s"]
            cells = " | ".join(
                f"{r[f'ours {v}']['min_s'] * 1e3:.1f} / {r[f'ours {v}']['min_s'] / base:.2f}"
                for v in args.variants
            )
            print(f"| {stage} | {base * 1e3:.1f} | {cells} |")
    if args.micro or args.micro_only:
        out["micro"] = micro_benchmarks(args.model, args.variants, args.repeats)
    out["load_average_at_end"] = os.getloadavg()
    output = args.output or os.path.join(
        bench.RESULTS_DIR, f"profile-{args.model}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    )
    os.makedirs(os.path.dirname(output), exist_ok=True)
    with open(output, "w") as f:
        json.dump(out, f, indent=1)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
