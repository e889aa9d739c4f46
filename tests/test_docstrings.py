"""Every docstring example of `keras_perceiver` and `training` runs, as a user would paste it.

Each example runs in an empty namespace (not its module's globals), so it
must import what it uses by its public path; its printed values must match.
Examples that need files or a trained model say `# doctest: +SKIP`.
"""

import doctest
import importlib
import pkgutil

import keras
import pytest

import keras_perceiver
import training

FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def module_names():
    names = []
    for package in (keras_perceiver, training):
        names.append(package.__name__)
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            names.append(info.name)
    return sorted(names)


def examples():
    cases = []
    finder = doctest.DocTestFinder(exclude_empty=True)
    for name in module_names():
        module = importlib.import_module(name)
        for test in finder.find(module, name, globs={}):
            if test.examples:
                cases.append(pytest.param(test, id=test.name))
    return cases


EXAMPLES = examples()


def test_examples_exist_for_the_public_layers_and_models():
    names = {param.values[0].name for param in EXAMPLES}
    for expected in (
        "keras_perceiver.layers.cross_attention.CrossAttention",
        "keras_perceiver.layers.cross_attention_encoder.CrossAttentionEncoder",
        "keras_perceiver.layers.latent_processor.LatentProcessor",
        "keras_perceiver.layers.query_decoder.QueryDecoder",
        "keras_perceiver.models.perceiver_io.PerceiverIO",
    ):
        assert expected in names, sorted(names)


@pytest.mark.parametrize("test", EXAMPLES)
def test_docstring_example(test):
    keras.utils.set_random_seed(0)
    report = []
    result = doctest.DocTestRunner(optionflags=FLAGS).run(test, out=report.append)
    assert result.failed == 0, "".join(report)
