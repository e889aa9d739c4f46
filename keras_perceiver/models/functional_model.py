"""Base class of the Functional models (backbones and tasks): config = constructor arguments, presets."""

import keras

from keras_perceiver.layers.attention_maps import record_attention_maps
from keras_perceiver.models.layer_arguments import deserialize_layers, serialize_layers
from keras_perceiver.models.model_inputs import ModelInputsMixin
from keras_perceiver.models.preset_loading import from_preset, save_to_preset


class PerceiverFunctionalModel(ModelInputsMixin, keras.Model):
    """A Functional model whose `get_config()` is exactly its constructor arguments.

    The base of `PerceiverBackbone` and of the task models
    (`PerceiverTaskModel`). Subclasses build their graph in `__init__`, call
    `super().__init__(inputs=..., outputs=...)` and then store their
    arguments in `self._perceiver_config`; `from_config(config)` is
    `cls(**config)`. Arguments that are layers are named in
    `LAYER_ARGUMENTS` and (de)serialized with Keras (a list of layers too). `presets` maps preset
    names to published hyperparameters for `from_preset`;
    `save_to_preset(directory)` writes a model to a directory that
    `from_preset(directory)` reads back.
    """

    LAYER_ARGUMENTS = ()
    presets = {}

    def __init__(self, inputs, outputs, **kwargs):
        unknown = sorted(set(kwargs) - {"name", "trainable"})
        if unknown:
            raise TypeError(
                f"{self.__class__.__name__}: unknown arguments {unknown}. Expected the constructor's "
                "arguments (the preprocessor's and the latent stack's go to `PerceiverBackbone(...)`)."
            )
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

    def attention_maps(self, inputs, training=False):
        """Run the model on `inputs`; return its outputs and every attention's probabilities (opt-in).

        The outputs are those of `model(inputs)`; the maps are recorded by
        `record_attention_maps` (transformers' `output_attentions=True`).

        Args:
            inputs: the model's inputs, as for `model(inputs)`.
            training: bool, the call's training mode. Defaults to False.

        Returns:
            `(outputs, maps)`: `maps` is an `AttentionMaps` dict, layer path ->
            (B, H, T, S) float32 probabilities, where T is the queries (the
            latents N in the encoder, the output queries O in the decoder)
            and S the keys (the inputs M, or the latents N);
            `maps.cross_attentions()[0]` is the encoder's (B, H, N, M),
            `maps.cross_attentions()[-1]` the decoder's (B, H, O, N).

        Example:
        >>> outputs, maps = model.attention_maps({"images": images})  # doctest: +SKIP
        >>> encoder = maps.cross_attentions()[0]  # doctest: +SKIP
        """
        with record_attention_maps() as maps:
            outputs = self(inputs, training=training)
        return outputs, maps

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        config.update(serialize_layers(self._perceiver_config, self.LAYER_ARGUMENTS))
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_layers(config, cls.LAYER_ARGUMENTS))

    @classmethod
    def from_preset(cls, preset, weights=None, **kwargs):
        """Build a named preset (see `presets`) or load a directory written by `save_to_preset`.

        Args:
            preset: str, a name in `presets`, or the path of a preset
                directory (config, weights and metadata).
            weights: optional path of a `.weights.h5` file to load (for a
                directory: instead of its own weights).
            **kwargs: constructor arguments that override the preset's.

        Raises:
            ValueError: for an unknown preset name, a corrupt preset directory
                or one that holds another model class.
            FileNotFoundError: for a preset directory with missing files.

        Example:
        >>> model.save_to_preset("my_model")  # doctest: +SKIP
        >>> restored = type(model).from_preset("my_model")  # doctest: +SKIP
        """
        return from_preset(cls, preset, weights=weights, **kwargs)

    def save_to_preset(self, directory, overwrite=False):
        """Write this model to `directory` in Keras' formats, for `from_preset(directory)`.

        Writes `config.json` (`keras.saving.serialize_keras_object`),
        `model.weights.h5` and `metadata.json` (keras_perceiver and Keras
        versions, class, parameter count). The files are written to a
        temporary sibling directory and renamed into place, so a failure
        leaves nothing behind.

        Args:
            directory: str or path-like; created if missing.
            overwrite: bool, replace an existing non-empty directory.
                Defaults to False.

        Raises:
            FileExistsError: if `directory` is not empty and `overwrite` is
                False, or is a file.
        """
        save_to_preset(self, directory, overwrite=overwrite)
