"""Fuzz cases for the command-line jobs: `training.train` parameters (the flags' values) out of range, of the
wrong type or unknown, and bad `--override` / `--data_option` items, through `training.train.run` and, for a
sample, the `python -m training.train` command itself; `training.export` and `training.evaluate` on missing,
wrong or damaged directories, unknown formats and arguments out of range. Each fails at once with a named
error naming the flag and value, and writes nothing.
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from tests.fuzz.harness import Fuzzer, Raises
from tests.test_case import TestCase
from training import evaluate, export, train

DRAWS = 4
MINIMUM_CASES = 40
# A run that stays small if a check ever let a bad value through.
SMALL_RUN = {"epochs": 1, "max_train_steps": 1, "export": False, "validate": False, "tensorboard": False}
# name -> values that must be refused
BAD_VALUES = {
    "epochs": [0, -1, 2.5, "ten", True],
    "batch_size": [0, -8, 1.5],  # None means "not given": the task default
    "steps_per_epoch": [0, -3, 2.0],
    "learning_rate": [0, -1e-3, float("nan"), "fast"],
    "warmup_steps": [-1, 0.5],
    "decay_start_fraction": [-0.1, 1.5],
    "weight_decay": [-0.01],
    "clip_norm": [0, -1.0],
    "label_smoothing": [1.0, -0.1, 2],
    "crop_padding": [-2, 1.5],
    "mixup_alpha": [-1.0],
    "cutmix_alpha": [-0.5],
    "noise_stddev": [-0.1, float("nan")],
    "mask_ratio": [0, 1, 1.5],
    "cpu_devices": [0, -2],
    "test_fraction": [0, 1, -0.5],
    "export_tolerance": [0, -1e-5],
    "export_check_batches": [0],
    "seed": [1.5, "zero"],
    "schedule": ["step", "Linear", ""],
    "optimizer": ["adagrad", "Adam"],
    "mixed_precision": ["float16", "bf16"],
    "strategy": ["gpu", "multiworker"],
}
# training.evaluate.run: name -> values that must be refused
BAD_EVALUATE_VALUES = {
    "batch_size": [0, -4, 2.5, "8", True],
    "max_examples": [0, -1, 1.5, "10"],
    "tflite": ["int4", "FLOAT32", ""],
    "flow_tiled_min_overlap": [-1, 2.5, "8", None],
}


class TrainParamsFuzzTest(TestCase):
    def test_fuzz_run_arguments(self):
        fuzzer = Fuzzer("training.train parameters", MINIMUM_CASES)
        rng = np.random.RandomState(11)
        model_dir = tempfile.mkdtemp()
        for name, values in BAD_VALUES.items():
            for value in values:
                expect = Raises(ValueError, f"{name}={value!r}")
                fuzzer.check(
                    f"{name}={value!r}",
                    lambda name=name, value=value: train.run(
                        **{**SMALL_RUN, "model_dir": model_dir, name: value}
                    ),
                    expect,
                )
        for _ in range(DRAWS):
            unknown = "".join(rng.choice(list("abcdxyz_"), size=7))
            fuzzer.check(
                f"unknown {unknown}", lambda u=unknown: train.run(**{u: 1}), Raises(ValueError, unknown)
            )
            task = "".join(rng.choice(list("abcdxyz_"), size=5))
            fuzzer.check(f"task {task}", lambda t=task: train.run(task=t), Raises(ValueError, repr(task)))
            item = "".join(rng.choice(list("abc123 "), size=6))
            expect = Raises(ValueError, repr(item))
            fuzzer.check(f"override {item!r}", lambda i=item: train.parse_key_values([i], "override"), expect)
        self.assertEqual(os.listdir(model_dir), [], "nothing is written before the parameters are checked")
        fuzzer.finish(self)

    def test_fuzz_export_arguments(self):
        fuzzer = Fuzzer("training.export arguments", 10)
        root = tempfile.mkdtemp()
        for formats in (("coreml",), ("saved_model", "pb"), (), ("TFLITE",)):
            fuzzer.check(
                f"formats {formats}",
                lambda formats=formats: export.run(root, os.path.join(root, "out"), formats=formats),
                Raises(ValueError, str(formats)),
            )
        for quantization in ("int4", "float8"):
            fuzzer.check(
                f"quantization {quantization}",
                lambda q=quantization: export.run(root, os.path.join(root, "out"), quantizations=(q,)),
                Raises(ValueError, repr(quantization)),
            )
        for client in ("json", "grpc"):
            fuzzer.check(
                f"client {client}",
                lambda c=client: export.run(root, os.path.join(root, "out"), client=c),
                Raises(ValueError, repr(client)),
            )
        for model_dir in (os.path.join(root, "missing"), root):
            fuzzer.check(
                f"model_dir {model_dir}",
                lambda m=model_dir: export.run(m, os.path.join(root, "out")),
                Raises(FileNotFoundError, model_dir),
            )
        self.assertFalse(os.path.exists(os.path.join(root, "out")), "a failed export writes nothing")
        fuzzer.finish(self)

    def test_fuzz_evaluate_arguments(self):
        fuzzer = Fuzzer("training.evaluate arguments", 24)
        rng = np.random.RandomState(12)
        root = tempfile.mkdtemp()
        models = {}
        for kind in ("classification", "flow"):  # a SavedModel directory as far as the checks read it
            models[kind] = os.path.join(root, kind)
            os.makedirs(models[kind])
            with open(os.path.join(models[kind], "metadata.json"), "w") as f:
                json.dump({"kind": kind, "dataset": "digits"}, f)
        for name, values in BAD_EVALUATE_VALUES.items():
            for value in values:
                fuzzer.check(
                    f"{name}={value!r}",
                    lambda n=name, v=value: evaluate.run(models["classification"], **{n: v}),
                    Raises(ValueError, f"{name}={value!r}"),
                )
        for _ in range(DRAWS):
            dataset = "".join(rng.choice(list("abcdxyz_"), size=6))
            fuzzer.check(
                f"dataset {dataset}",
                lambda d=dataset: evaluate.run(models["classification"], dataset=d),
                Raises(ValueError, repr(dataset)),
            )
        for size in ("64by96", "0x8", "-3x4", (16,)):
            fuzzer.check(
                f"flow_tiled_sizes {size!r}",
                lambda s=size: evaluate.run(models["flow"], flow_tiled_sizes=[s]),
                Raises(ValueError, repr(size)),
            )
        fuzzer.check(
            "flow_tiled_sizes on a classifier",
            lambda: evaluate.run(models["classification"], flow_tiled_sizes=["64x96"]),
            Raises(ValueError, "kind='classification'"),
        )
        fuzzer.check(
            "tflite file missing",
            lambda: evaluate.run(models["classification"], tflite="float16"),
            Raises(FileNotFoundError, "model_float16.tflite"),
        )
        missing = os.path.join(root, "missing")
        fuzzer.check("model missing", lambda: evaluate.run(missing), Raises(FileNotFoundError, missing))
        broken = os.path.join(root, "broken")
        os.makedirs(broken)
        for name, text in (("truncated", '{"kind": "classi'), ("a list", "[1, 2]"), ("latin-1", "\xe9t\xe9")):
            with open(os.path.join(broken, "metadata.json"), "wb") as f:
                f.write(text.encode("latin-1"))
            fuzzer.check(
                f"metadata.json {name}",
                lambda: evaluate.run(broken),
                Raises(ValueError, "metadata.json"),
            )
        for kind, directory in models.items():
            self.assertEqual(
                os.listdir(directory), ["metadata.json"], f"nothing is written in the {kind} model"
            )
        fuzzer.finish(self)

    def test_the_command_line_reports_bad_flags(self):
        # Two processes (each imports TensorFlow): a value absl parses but the job refuses; one absl refuses.
        fuzzer = Fuzzer("python -m training.train", 2)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        for flag, shown in (
            ("--learning_rate=-1", "learning_rate=-1.0"),
            ("--batch_size=abc", "--batch_size"),
        ):

            def command(flag=flag):
                result = subprocess.run(
                    [sys.executable, "-m", "training.train", flag, f"--model_dir={tempfile.mkdtemp()}"],
                    capture_output=True,
                    text=True,
                    env=env,
                )
                if result.returncode == 0:
                    return result
                raise ValueError(result.stderr[-3000:])

            fuzzer.check(flag, command, Raises(ValueError, shown))
        fuzzer.finish(self)
