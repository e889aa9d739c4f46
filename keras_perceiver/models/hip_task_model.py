"""Base class of the HiP task models: a head on a `HiPBackbone`, called on a dict of modalities."""

from keras_perceiver.models.hip_backbone import HiPBackbone, check_modality_inputs, fill_padding_masks
from keras_perceiver.models.hip_backbone_presets import HIERARCHICAL_PERCEIVER_PRESETS
from keras_perceiver.models.task_model import PerceiverTaskModel


class HiPTaskModel(PerceiverTaskModel):
    """A head on a `HiPBackbone` (`HierarchicalPerceiver`, `HiPClassBottleneck`, `HiPClassifier`).

    Inputs are a dict of modality name -> (B, M_m, C_m) (and optional
    `<m>_padding_mask` (B, M_m)); a wrong dict raises a `ValueError` naming
    the expected and received modalities and shapes before any computation.
    Presets are the official variants (`HiPBackbone.presets`), built with
    `from_preset(name, input_shapes={...})`.
    """

    backbone_class = HiPBackbone
    presets = HIERARCHICAL_PERCEIVER_PRESETS

    def modality_shapes(self):
        """The modalities the model is called on: name -> (M, C)."""
        return self.backbone.input_shapes

    def __call__(self, inputs, *args, **kwargs):
        inputs = self.named_inputs(inputs)  # a lone tensor for a model of one modality
        check_modality_inputs(self.__class__.__name__, self.modality_shapes(), inputs)
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=None, mask=None, **kwargs):
        # Keras' JAX trainer calls `call` directly: absent optional masks are filled here too.
        inputs = fill_padding_masks(inputs, self.modality_shapes())
        return super().call(inputs, training=training, mask=mask, **kwargs)

    @classmethod
    def from_hyperparameters(cls, **hyperparameters):
        """Build from one flat argument list (`HiPBackbone` arguments and the head's arguments)."""
        return cls(**hyperparameters)
