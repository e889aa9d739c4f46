"""(De)serialization of layer-valued constructor arguments of the task models."""

import keras


def serialize_layers(config, keys):
    """Replace the layers under `keys` in `config` by their Keras serialization."""
    config = dict(config)
    for key in keys:
        if config.get(key) is not None:
            config[key] = keras.saving.serialize_keras_object(config[key])
    return config


def deserialize_layers(config, keys):
    """Inverse of `serialize_layers`: rebuild the layers under `keys`."""
    config = dict(config)
    for key in keys:
        if isinstance(config.get(key), dict):
            config[key] = keras.saving.deserialize_keras_object(config[key])
    return config
