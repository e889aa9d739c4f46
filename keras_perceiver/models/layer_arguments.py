"""(De)serialization of layer-valued constructor arguments of the task models."""

import keras


def serialize_layers(config, keys):
    """Replace the layers under `keys` in `config` by their Keras serialization."""
    config = dict(config)
    for key in keys:
        value = config.get(key)
        if isinstance(value, (list, tuple)):
            config[key] = [keras.saving.serialize_keras_object(layer) for layer in value]
        elif value is not None:
            config[key] = keras.saving.serialize_keras_object(value)
    return config


def deserialize_layers(config, keys):
    """Inverse of `serialize_layers`: rebuild the layers under `keys`."""
    config = dict(config)
    for key in keys:
        value = config.get(key)
        if key not in config:
            continue
        if isinstance(value, (list, tuple)):
            config[key] = [_deserialize(layer) for layer in value]
        else:
            config[key] = _deserialize(value)
    return config


def _deserialize(value):
    return keras.saving.deserialize_keras_object(value) if isinstance(value, dict) else value
