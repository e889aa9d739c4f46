"""Task models with a task preprocessor: predict, fit and evaluate on raw data (keras-hub's task contract)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_perceiver.task_preprocessors import TextTaskPreprocessor
from keras_perceiver.tokenizers import ByteTokenizer
from tests.models.test_perceiver_text_classifier import tiny
from tests.test_case import TestCase

TEXTS = ["a good film", "bad, very bad", "good good", "awful"]
LABELS = np.array([1, 0, 1, 0])


def raw_text_classifier():
    keras.utils.set_random_seed(0)
    return tiny(num_classes=2, preprocessor=TextTaskPreprocessor(ByteTokenizer(sequence_length=24)))


class RawInputTaskTest(TestCase):
    def test_predict_on_strings_equals_predict_on_token_ids(self):
        model = raw_text_classifier()
        tokens = model.preprocessor(TEXTS)
        expected = np.asarray(model({key: value.numpy() for key, value in tokens.items()}))
        self.assertAllClose(model.predict(TEXTS, verbose=0), expected, atol=1e-5)
        self.assertAllClose(
            model.predict(tf.data.Dataset.from_tensor_slices(TEXTS).batch(3), verbose=0), expected, atol=1e-5
        )
        # preprocessed data skips the preprocessor; preprocessor=None feeds model inputs as they are
        self.assertAllClose(model.predict(model.preprocessor.dataset(TEXTS), verbose=0), expected, atol=1e-5)
        model.preprocessor = None
        self.assertAllClose(
            model.predict({k: v.numpy() for k, v in tokens.items()}, verbose=0), expected, atol=1e-5
        )

    def test_fit_and_evaluate_on_strings_learn(self):
        model = raw_text_classifier()
        model.compile(
            optimizer=keras.optimizers.Adam(3e-3),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        before = model.evaluate(TEXTS, LABELS, verbose=0, return_dict=True)["loss"]
        history = model.fit(
            TEXTS * 8, np.tile(LABELS, 8), batch_size=8, epochs=6, verbose=0, validation_data=(TEXTS, LABELS)
        )
        after = model.evaluate(
            tf.data.Dataset.from_tensor_slices((TEXTS, LABELS)).batch(2), verbose=0, return_dict=True
        )["loss"]
        self.assertIn("val_loss", history.history)
        self.assertLess(after, 0.5 * before)
        with pytest.raises(ValueError, match="wrap it in a list"):
            model.predict("one string")
        with pytest.raises(ValueError, match="carries its own labels"):
            model.fit(tf.data.Dataset.from_tensor_slices((TEXTS, LABELS)).batch(2), LABELS)

    def test_preprocessor_travels_with_saving_and_presets(self):
        model = raw_text_classifier()
        expected = model.predict(TEXTS, verbose=0)
        restored = self.run_model_saving_test(model, model.preprocessor(TEXTS))
        self.assertIsInstance(restored.preprocessor, TextTaskPreprocessor)
        self.assertAllClose(restored.predict(TEXTS, verbose=0), expected, atol=1e-6)
        directory = os.path.join(self.make_temp_dir(), "preset")
        model.save_to_preset(directory)
        loaded = type(model).from_preset(directory)
        self.assertEqual(loaded.preprocessor.tokenizer.sequence_length, 24)
        self.assertAllClose(loaded.predict(TEXTS, verbose=0), expected, atol=1e-6)


def test_exported_signature_reuses_the_models_preprocessor(tmp_path):
    """export_saved_model of a model with a preprocessor: serving_default takes raw strings, same outputs."""
    from keras_perceiver.export import export_saved_model, load_saved_model

    model = raw_text_classifier()
    export_saved_model(model, tmp_path / "text")
    serve = load_saved_model(tmp_path / "text")
    assert set(serve.input_signature) == {"text"}
    outputs = serve({"text": np.array(TEXTS)})["outputs"]
    np.testing.assert_allclose(outputs, model.predict(TEXTS, verbose=0), atol=1e-5)


def test_classify_names_the_classes_and_keeps_them_in_the_config(tmp_path):
    model = tiny(
        num_classes=2,
        id2label=["negative", "positive"],
        preprocessor=TextTaskPreprocessor(ByteTokenizer(sequence_length=24)),
    )
    results = model.classify(TEXTS, top_k=2)
    probabilities = keras.ops.convert_to_numpy(keras.ops.softmax(model.predict(TEXTS, verbose=0)))
    assert len(results) == len(TEXTS)
    for row, expected in zip(results, probabilities):
        assert {item["label"] for item in row} == {"negative", "positive"}
        assert row[0]["score"] >= row[1]["score"]
        np.testing.assert_allclose(row[0]["score"], expected.max(), atol=1e-6)
    restored = type(model).from_config(model.get_config())
    assert restored.id2label == ["negative", "positive"]
    with pytest.raises(ValueError, match="name each of the 2 classes"):
        tiny(num_classes=2, id2label=["only one"])
    with pytest.raises(ValueError, match="top_k"):
        model.classify(TEXTS, top_k=0)


def test_exported_classifier_returns_class_names(tmp_path):
    from keras_perceiver.export import classification_outputs, export_saved_model, load_saved_model

    model = tiny(
        num_classes=2,
        id2label=["negative", "positive"],
        preprocessor=TextTaskPreprocessor(ByteTokenizer(sequence_length=24)),
    )
    export_saved_model(
        model, tmp_path / "named", outputs=classification_outputs(2, class_names=model.id2label)
    )
    served = load_saved_model(tmp_path / "named")({"text": np.array(TEXTS)})
    expected = [[item["label"] for item in row] for row in model.classify(TEXTS, top_k=2)]
    assert [[name.decode() for name in row] for row in served["top_k_class_names"].numpy()] == expected
