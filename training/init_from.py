"""`--init_from`: start a model from an earlier run's weights, matched by name (pretrain -> fine-tune).

The earlier run's `model.keras` is loaded (with its `best.weights.h5`, the
checkpoint its validation chose, when present), and every weight of the new
model whose path (`variable.path`, e.g. `block_0/self_attention_0/.../kernel`)
and shape equal one of the source's takes its value; the others keep their
fresh initialization. For HiP this loads the embedder, the position
embeddings and the blocks of a `hip_mae` run into a `HiPClassifier` (the
label layers and the head stay new). Keras' own `load_weights(...,
skip_mismatch=True)` matches by layer order, not by name, so it cannot
move weights between two different task graphs.
"""

import os

import keras

from training.callbacks import BEST_WEIGHTS_FILE

MODEL_FILE = "model.keras"


def load_source_model(model_dir):
    """The model of an earlier run's `model_dir` (its `model.keras`, with `best.weights.h5` if present).

    Raises:
        FileNotFoundError: if `model_dir` holds no `model.keras`.
    """
    path = os.path.join(model_dir, MODEL_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"--init_from needs the model_dir of a finished training run, holding {MODEL_FILE}. "
            f"Received: init_from={model_dir!r} (no {path})"
        )
    model = keras.saving.load_model(path, compile=False)
    best = os.path.join(model_dir, BEST_WEIGHTS_FILE)
    if os.path.isfile(best):
        model.load_weights(best)
    return model


def load_matching_weights(model, model_dir):
    """Copy into `model` every weight of the run in `model_dir` with the same path and shape.

    Args:
        model: the new (built) Keras model.
        model_dir: str, the `--model_dir` of an earlier `training.train` run.

    Returns:
        dict: `"loaded"` (paths copied), `"new"` (paths of `model` left as
        initialized) and `"unused"` (source paths not copied), sorted lists.

    Raises:
        FileNotFoundError: if `model_dir` holds no `model.keras`.
        ValueError: if no weight matches (the two models share no layer names).
    """
    source = {variable.path: variable for variable in load_source_model(model_dir).weights}
    loaded, new = [], []
    for variable in model.weights:
        match = source.get(variable.path)
        if match is not None and tuple(match.shape) == tuple(variable.shape):
            variable.assign(match.value)
            loaded.append(variable.path)
        else:
            new.append(variable.path)
    if not loaded:
        raise ValueError(
            f"--init_from: no weight of {model_dir!r} matches the new model by path and shape. "
            f"Received: source paths {sorted(source)[:5]}..., model paths "
            f"{[v.path for v in model.weights][:5]}..."
        )
    unused = sorted(set(source) - set(loaded))
    return {"loaded": sorted(loaded), "new": sorted(new), "unused": unused}
