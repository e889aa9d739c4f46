"""A quiet start for the command-line jobs: TensorFlow's lines about absent GPUs are left out of stderr.

TensorFlow's CUDA build, started on a machine without an NVIDIA GPU, writes
an error line (`failed call to cuInit`) and, depending on the version, "Unable
to register cuDNN/cuFFT/cuBLAS factory" lines while it starts. On such a
machine (no `/dev/nvidia0`, no `/proc/driver/nvidia`), `import_tensorflow`
imports TensorFlow and lists its devices with stderr going through a filter
that drops the lines matching `NO_GPU_LINES` and forwards every other line at
once, so that real errors (and a crash's last words) still show. INFO lines
of TensorFlow's C++ logging are off unless `TF_CPP_MIN_LOG_LEVEL` says
otherwise (the default here is 1: warnings and errors show), including those
written before its logging reads that level (`I0000 ... oneDNN custom
operations are on`).
`KERAS_PERCEIVER_VERBOSE_STARTUP=1` turns the filter off.
"""

import contextlib
import importlib.util
import os
import re
import sys
import threading

# Lines TensorFlow writes at start-up on a machine without an NVIDIA GPU, and the preamble of its C++ logging.
NO_GPU_LINES = re.compile(
    r"failed call to cuInit"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|Could not find cuda drivers on your machine"
    r"|computation placer already registered"
    r"|All log messages before absl::InitializeLog\(\) is called are written to STDERR"
)


def has_nvidia_gpu():
    """True when the machine shows an NVIDIA driver or device (Linux paths)."""
    return os.path.exists("/dev/nvidia0") or os.path.exists("/proc/driver/nvidia/version")


@contextlib.contextmanager
def filtered_stderr(pattern):
    """Within the block, file descriptor 2 goes through a pipe: lines matching `pattern` are dropped, the
    others are written to the real stderr as they come (C++ and Python writers alike)."""
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward():
        with os.fdopen(read_end, "rb") as pipe:
            for line in pipe:
                if not pattern.search(line.decode("utf-8", "replace")):
                    os.write(original, line)

    thread = threading.Thread(target=forward, daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(original, 2)  # closes the pipe's last write end: the thread reads to its end
        thread.join()
        os.close(original)


# An INFO line of TensorFlow's C++ logging (absl format: severity letter, MMDD, time).
INFO_LINE = r"^I\d{4} \d\d:\d\d:\d\d"


def import_tensorflow():
    """Import TensorFlow (and initialize its devices) with the no-GPU start-up lines filtered out.

    Returns the module; None, importing nothing, where TensorFlow is not installed or
    `KERAS_BACKEND` names another backend (e.g. JAX on a machine without TensorFlow).
    """
    other_backend = os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow"
    if other_backend or importlib.util.find_spec("tensorflow") is None:
        return None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")
    if "tensorflow" in sys.modules or has_nvidia_gpu() or os.environ.get("KERAS_PERCEIVER_VERBOSE_STARTUP"):
        import tensorflow as tf
    else:
        pattern = NO_GPU_LINES
        if os.environ["TF_CPP_MIN_LOG_LEVEL"] not in ("", "0"):
            pattern = re.compile(f"{NO_GPU_LINES.pattern}|{INFO_LINE}")
        with filtered_stderr(pattern):
            import tensorflow as tf

            tf.config.list_physical_devices()
    return tf
