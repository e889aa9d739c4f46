"""The command-line jobs start quietly on a machine without a GPU, and real errors still show."""

import os
import subprocess
import sys
import textwrap

from tests.test_case import TestCase
from training.quiet_startup import NO_GPU_LINES, has_nvidia_gpu

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_python(code, **env):
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    environment.update(env, PYTHONPATH=REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO_ROOT,
        timeout=300,
        check=False,
    )


class QuietStartupTest(TestCase):
    def test_the_filter_drops_the_no_gpu_lines_and_forwards_the_rest(self):
        result = run_python(
            """
            import os, sys
            from training.quiet_startup import NO_GPU_LINES, filtered_stderr
            with filtered_stderr(NO_GPU_LINES):
                os.write(2, b"E0000 00:00:1.0 1 cuda_platform.cc:52] failed call to cuInit: (303)\\n")
                os.write(2, b"E0000 00:00:1.0 1 some.cc:1] a real error\\n")
                print("a Python error line", file=sys.stderr)
                os.write(2, b"Unable to register cuDNN factory: ...\\n")
            print("after the block", file=sys.stderr)
            """
        )
        self.assertEqual(result.returncode, 0, msg=result.stderr)
        self.assertEqual(
            result.stderr.splitlines(),
            ["E0000 00:00:1.0 1 some.cc:1] a real error", "a Python error line", "after the block"],
        )

    def test_importing_the_jobs_prints_no_gpu_lines_without_a_gpu(self):
        if has_nvidia_gpu():
            self.skipTest("this machine has an NVIDIA GPU: the filter is off")
        code = "import training, tensorflow as tf; print(len(tf.config.list_physical_devices()))"
        quiet = run_python(code)
        verbose = run_python(code, KERAS_PERCEIVER_VERBOSE_STARTUP="1", TF_CPP_MIN_LOG_LEVEL="0")
        for result in (quiet, verbose):
            self.assertEqual(result.returncode, 0, msg=result.stderr)
        self.assertEqual([line for line in quiet.stderr.splitlines() if NO_GPU_LINES.search(line)], [])
        self.assertEqual([line for line in quiet.stderr.splitlines() if line.startswith("I0")], [])
        # What the filter removed is what TensorFlow writes on this machine (where it writes any).
        removed = [line for line in verbose.stderr.splitlines() if NO_GPU_LINES.search(line)]
        print(f"lines TensorFlow writes here without the filter: {len(removed)}: {removed[:3]}")
        self.assertEqual(quiet.stdout, verbose.stdout)
