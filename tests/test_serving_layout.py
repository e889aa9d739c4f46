"""TF Serving layout: `training.export --serving_base` writes `<base>/<name>/<version>/`, which
`saved_model_cli run` and a process without keras_perceiver load with the export's outputs."""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import pytest

from keras_perceiver.export import load_saved_model
from keras_perceiver.serving_layout import SAVED_MODEL_FILES, versions, write_serving_version
from tests.test_case import TestCase

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = {"num_latents": 4, "latent_dim": 16, "num_self_attends_per_block": 1, "query_channels": 16}

FRESH_PROCESS = textwrap.dedent(
    """
    import sys
    sys.modules["keras_perceiver"] = None  # any import of it fails: stock TensorFlow ops only
    sys.modules["training"] = None
    import numpy as np
    import tensorflow as tf

    version_dir, images, out = sys.argv[1:]
    served = tf.saved_model.load(version_dir)
    outputs = served.signatures["serving_default"](image=tf.constant(np.load(images)))
    np.save(out, outputs["logits"].numpy())
    """
)


class ServingLayoutTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        from training import export as export_job
        from training import train

        cls.root = tempfile.mkdtemp(prefix="keras_perceiver_test_")
        cls.addClassCleanup(shutil.rmtree, cls.root, ignore_errors=True)
        run_dir = os.path.join(cls.root, "run")
        train.run(
            verbose=0, model_dir=run_dir, task="digits", epochs=1, max_train_steps=1, overrides=TINY,
            jit_compile=False, tensorboard=False, backup=False, export=False,
        )  # fmt: skip
        cls.export = os.path.join(cls.root, "export")
        cls.base = os.path.join(cls.root, "models")
        cls.report = export_job.run(
            run_dir, cls.export, formats=("saved_model",), check_examples=8, serving_base=cls.base
        )

    def test_the_export_writes_version_1_with_the_saved_model_files_only(self):
        version_dir = os.path.join(self.base, "digits", "1")
        self.assertEqual(self.report["tf_serving"], version_dir)
        self.assertEqual(versions(os.path.join(self.base, "digits")), [1])
        copied = sorted(name for name in SAVED_MODEL_FILES if os.path.exists(os.path.join(self.export, name)))
        self.assertIn("variables", copied)
        self.assertEqual(sorted(os.listdir(version_dir)), sorted(copied + ["assets.extra"]))  # no tflite/
        self.assertEqual(os.listdir(os.path.join(version_dir, "assets.extra")), ["metadata.json"])
        # Hidden staging directories are gone: TF Serving sees whole versions only.
        self.assertEqual(os.listdir(os.path.join(self.base, "digits")), ["1"])

    def test_saved_model_cli_and_a_process_without_keras_perceiver_serve_the_exports_outputs(self):
        from training.data import digits

        images = digits.load_arrays("test")[0][:5]
        expected = load_saved_model(self.export)({"image": images})["logits"].numpy()
        self.assertGreater(float(np.max(np.abs(expected))), 0.0)
        work = self.make_temp_dir()
        images_file = os.path.join(work, "images.npy")
        np.save(images_file, images)
        version_dir = os.path.join(self.base, "digits", "1")
        cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
        command = [cli, "run", "--dir", version_dir, "--tag_set", "serve", "--signature_def"]
        command += ["serving_default", "--inputs", f"image={images_file}", "--outdir", work]
        result = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
        self.assertEqual(result.returncode, 0, msg=result.stderr[-3000:])
        np.testing.assert_allclose(np.load(os.path.join(work, "logits.npy")), expected, atol=1e-6)
        out = os.path.join(work, "fresh.npy")
        env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
        result = subprocess.run(
            [sys.executable, "-c", FRESH_PROCESS, version_dir, images_file, out],
            capture_output=True,
            text=True,
            env=env,
            cwd=work,
            timeout=300,
            check=False,
        )
        self.assertEqual(result.returncode, 0, msg=result.stderr[-3000:])
        np.testing.assert_allclose(np.load(out), expected, atol=1e-6)

    def test_versions_count_up_and_bad_arguments_are_refused(self):
        base = self.make_temp_dir()
        first = write_serving_version(self.export, base, "digits")
        second = write_serving_version(self.export, base, "digits")
        self.assertEqual((os.path.basename(first), os.path.basename(second)), ("1", "2"))
        self.assertEqual(os.path.basename(write_serving_version(self.export, base, "digits", version=7)), "7")
        with pytest.raises(FileExistsError, match="Version 7 of 'digits' exists"):
            write_serving_version(self.export, base, "digits", version=7)
        for name in ("a/b", "", ".hidden", None):
            with pytest.raises(ValueError, match="`name` must be one path component"):
                write_serving_version(self.export, base, name)
        for version in (0, -1, 1.5, True, "3"):
            with pytest.raises(ValueError, match="`version` must be a positive integer"):
                write_serving_version(self.export, base, "digits", version=version)
        with pytest.raises(FileNotFoundError, match="No saved_model.pb"):
            write_serving_version(base, base, "digits")
