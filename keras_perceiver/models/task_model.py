"""Base class of the Functional task models: config = constructor arguments, presets."""

import keras

from keras_perceiver.models.layer_arguments import deserialize_layers, serialize_layers
from keras_perceiver.models.model_inputs import ModelInputsMixin
from keras_perceiver.models.preset_loading import from_preset


class PerceiverTaskModel(ModelInputsMixin, keras.Model):
    """A Functional model whose `get_config()` is exactly its constructor arguments.

    Subclasses build their graph in `__init__`, call
    `super().__init__(inputs=..., outputs=...)` and then store their
    arguments in `self._perceiver_config`; `from_config(config)` is
    `cls(**config)`. Arguments that are layers are named in
    `LAYER_ARGUMENTS` and (de)serialized with Keras. `presets` maps preset
    names to published hyperparameters for `from_preset`.
    """

    LAYER_ARGUMENTS = ()
    presets = {}

    def get_config(self):
        config = {"name": self.name, "trainable": self.trainable}
        config.update(serialize_layers(self._perceiver_config, self.LAYER_ARGUMENTS))
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**deserialize_layers(config, cls.LAYER_ARGUMENTS))

    @classmethod
    def from_preset(cls, preset, weights=None, **kwargs):
        """Build a named preset (see `presets`); load a `.weights.h5` file if `weights` is given.

        Raises:
            ValueError: for an unknown preset name.
        """
        return from_preset(cls, preset, weights=weights, **kwargs)
