"""The built wheel (not an editable install) in a clean virtual environment, on Python 3.11, 3.12 and 3.13.

Each Python gets a new venv with only `pip install <wheel>` (the default
stack: TensorFlow 2.21, tensorflow-text 2.21, numpy 2), then, from a
directory outside the repository so that nothing imports from the source tree:
the README's quick start; on the Python that runs the tests, also the three
console scripts on the main job's data (train one epoch -> export SavedModel +
TFLite -> evaluate the export). The scripts are pure Python over the stack the
quick start already exercised, so running them once keeps CI's time down.
"""

import concurrent.futures
import glob
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # new venvs, pip installs, training on three Pythons

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHONS = ("3.11", "3.12", "3.13")


def find_python(version):
    """An interpreter of `version` (e.g. "3.12"): `pythonX.Y` on PATH, else pyenv's; None if there is none."""
    candidates = [shutil.which(f"python{version}")]
    if shutil.which("pyenv"):
        root = subprocess.run(["pyenv", "root"], capture_output=True, text=True).stdout.strip()
        candidates += sorted(
            glob.glob(os.path.join(root, "versions", f"{version}.*", "bin", f"python{version}"))
        )
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version)"], capture_output=True, text=True
        )
        if probe.returncode == 0 and probe.stdout.startswith(version + "."):
            return candidate
    return None


def quick_start_code():
    """The first ```python block after the README's "## Quick start" heading."""
    with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    section = readme[readme.index("## Quick start") :]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def run(command, cwd, timeout=600, env=None):
    job = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert job.returncode == 0, (
        f"{command} exited {job.returncode}:\n{job.stdout[-2000:]}\n{job.stderr[-4000:]}"
    )
    return job.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    directory = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(directory), REPO_ROOT], REPO_ROOT)
    (path,) = glob.glob(os.path.join(directory, "keras_perceiver-*.whl"))
    return path


def check_wheel(version, python, wheel, tmp_path):
    """Install `wheel` into a new venv of `python`, run the quick start (and on the tests' own Python the
    CLIs); raise on a failure."""
    venv = tmp_path / "venv"
    run([python, "-m", "venv", str(venv)], tmp_path)
    bin_dir = venv / "bin"
    # --no-compile: no .pyc for the whole stack up front (CPU minutes in CI); imports compile what they use.
    pip_install = [str(bin_dir / "python"), "-m", "pip", "install", "-q", "--no-compile", wheel]
    run(pip_install, tmp_path, timeout=1200)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "KERAS_BACKEND")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    work = tmp_path / "work"
    work.mkdir()

    # The installed package, not the source tree.
    versions = json.loads(
        run(
            [
                str(bin_dir / "python"),
                "-c",
                "import json, keras_perceiver, training, numpy, tensorflow, tensorflow_text\n"
                "print(json.dumps("
                "[keras_perceiver.__file__, training.__file__, numpy.__version__, tensorflow.__version__]))",
            ],
            work,
            env=env,
        ).splitlines()[-1]
    )
    report = [f"Python {version}: numpy {versions[2]}, TensorFlow {versions[3]}"]
    assert all(str(venv) in path for path in versions[:2]), versions
    assert versions[2].startswith("2.") and versions[3].startswith("2.21."), versions

    script = work / "quick_start.py"
    script.write_text(quick_start_code().replace("/tmp/perceiver_io_quickstart", str(work / "quickstart")))
    lines = run([str(bin_dir / "python"), str(script)], work, env=env).strip().splitlines()
    assert lines[0] == "(2, 10)", lines
    assert float(lines[-1]) <= 1e-5, lines
    report.append(f"Python {version}: quick start ran")
    if version != "{}.{}".format(*sys.version_info[:2]):
        return report

    run_dir = work / "digits"
    run(
        [
            str(bin_dir / "keras-perceiver-train"),
            "--task=digits",
            f"--model_dir={run_dir}",
            "--epochs=1",
            "--verbose=0",
        ],
        work,
        env=env,
    )
    export = run_dir / "export"
    run(
        [
            str(bin_dir / "keras-perceiver-export"),
            f"--model_dir={run_dir}",
            f"--output={export}",
            "--formats=saved_model,tflite",
            "--quantizations=float32",
        ],
        work,
        env=env,
    )
    run([str(bin_dir / "keras-perceiver-evaluate"), f"--model={export}"], work, env=env)
    with open(export / "evaluation" / "evaluation.json") as f:
        evaluation = json.load(f)
    report.append(f"Python {version}: one-epoch digits export evaluated: {evaluation.get('accuracy')}")
    assert evaluation["num_examples"] == 360, evaluation
    assert 0.0 <= evaluation["accuracy"] <= 1.0, evaluation
    return report


@pytest.fixture(scope="module")
def wheel_checks(wheel, tmp_path_factory):
    """version -> future of `check_wheel` (None without that Python). The three run two at a time: each is
    mostly single-threaded (pip unpacking, one training process), so two share the 2 cores' time."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=2)
    checks = {}
    for version in PYTHONS:
        python = find_python(version)
        directory = tmp_path_factory.mktemp(f"python{version}")
        checks[version] = python and pool.submit(check_wheel, version, python, wheel, directory)
    yield checks
    pool.shutdown(wait=True)


@pytest.mark.parametrize("version", PYTHONS)
def test_wheel_installs_and_runs_quick_start_and_clis(version, wheel_checks):
    if wheel_checks[version] is None:
        pytest.skip(f"no Python {version} on this machine")
    for line in wheel_checks[version].result():  # re-raises the check's failure here
        print(line)
