"""Perceiver building blocks (keras.ops only: TensorFlow, JAX and PyTorch backends)."""

from keras_perceiver.layers.attention_block import AttentionBlock
from keras_perceiver.layers.attention_layer_base import AttentionLayerBase
from keras_perceiver.layers.cross_attention import CrossAttention
from keras_perceiver.layers.cross_attention_encoder import CrossAttentionEncoder
from keras_perceiver.layers.drop_path import DropPath
from keras_perceiver.layers.fourier_position_encoding import FourierPositionEncoding
from keras_perceiver.layers.fourier_queries import FourierQueries
from keras_perceiver.layers.hashed_ngram_embedding import HashedNGramEmbedding
from keras_perceiver.layers.hip_block import HiPBlock
from keras_perceiver.layers.input_queries import InputQueries
from keras_perceiver.layers.latent_processor import LatentProcessor
from keras_perceiver.layers.mlp_block import MLPBlock
from keras_perceiver.layers.modality_embedder import ModalityEmbedder, ModalityUnembedder
from keras_perceiver.layers.modality_grouper import (
    ModalityConcatenation,
    ModalityGrouper,
    ModalityUngrouper,
)
from keras_perceiver.layers.modality_position_encoder import ModalityPositionEncoder
from keras_perceiver.layers.multi_head_attention import PerceiverMultiHeadAttention
from keras_perceiver.layers.multimodal_queries import MultimodalQueries
from keras_perceiver.layers.position_combiner import PositionCombiner
from keras_perceiver.layers.query_decoder import QueryDecoder
from keras_perceiver.layers.query_patches import CentredPatches, QueryPatches
from keras_perceiver.layers.regroup import Regroup, fold_groups, regroup, unfold_groups
from keras_perceiver.layers.self_attention import SelfAttention
from keras_perceiver.layers.task_queries import TaskQueries
from keras_perceiver.layers.trainable_position_encoding import TrainablePositionEncoding
from keras_perceiver.layers.trainable_queries import TrainableQueries

__all__ = [
    "AttentionBlock",
    "AttentionLayerBase",
    "CentredPatches",
    "CrossAttention",
    "CrossAttentionEncoder",
    "DropPath",
    "FourierPositionEncoding",
    "FourierQueries",
    "HashedNGramEmbedding",
    "HiPBlock",
    "InputQueries",
    "LatentProcessor",
    "MLPBlock",
    "ModalityConcatenation",
    "ModalityEmbedder",
    "ModalityGrouper",
    "ModalityPositionEncoder",
    "ModalityUnembedder",
    "ModalityUngrouper",
    "MultimodalQueries",
    "PerceiverMultiHeadAttention",
    "PositionCombiner",
    "QueryDecoder",
    "QueryPatches",
    "Regroup",
    "SelfAttention",
    "TaskQueries",
    "TrainablePositionEncoding",
    "TrainableQueries",
    "fold_groups",
    "regroup",
    "unfold_groups",
]
