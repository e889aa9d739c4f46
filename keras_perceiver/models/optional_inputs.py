"""Let a Functional model's dict inputs leave out its optional inputs."""


class OptionalInputsMixin:
    """Fill optional inputs (`keras.Input(..., optional=True)`) left out of a dict with None.

    Keras' Functional models accept None for an optional input but still
    require its key; with this mixin `model({"inputs": x})` and datasets
    without a `padding_mask` work too.
    """

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, dict):
            missing = [
                t.name
                for t in self.inputs
                if t.name not in inputs and getattr(t._keras_history.operation, "optional", False)
            ]
            if missing:
                inputs = {**inputs, **{name: None for name in missing}}
        return super().__call__(inputs, *args, **kwargs)
