"""Point clouds of the Open Inventor CAD models: {"points": float32 (P, 3), "label": int64, "model": str}.

Source: Debian `inventor-data` (LGPL-2+; not copied into this project)
installs the SGI Open Inventor example models in
`/usr/share/inventor/data/models/<category>/*.iv`; `ivfix` of Debian
`inventor-clients` flattens a scene graph (`ivfix -a -f -n -t`: ASCII,
independent faces, no normals, no texture coordinates). Get both with
`apt-get install inventor-data inventor-clients`, or without root
`apt-get download inventor-data inventor-clients libinventor1` + `dpkg -x NAME.deb ROOT` and
`KERAS_PERCEIVER_DATA_ROOT=ROOT` (see `MISSING_HINT`).

Data root: `data_dir` (the models directory itself) if given; otherwise
`$KERAS_PERCEIVER_DATA_ROOT/usr/share/inventor/data/models` when that
variable is set (a prefix root as left by `dpkg -x`; `ivfix` is then also
looked for in `ROOT/usr/bin`), then the standard path.

Each model: the flattened file is parsed (`IndexedFaceSet`, `FaceSet`,
`Coordinate3`, `VertexProperty`, `MatrixTransform`, `Separator`, `DEF`/`USE`,
`File` includes); polygons are fan-triangulated into a `trimesh.Trimesh`;
`num_points` points are sampled on its surface (area-weighted, seeded by
`seed` and the model's path); the cloud is centred on its mean and scaled so
that its farthest point lies at distance 1 (unit sphere). Units: the models'
own units before the normalization, none after.

Models: the `.iv` files directly inside a category folder (85 with
inventor-data 2.1.5); the 12 files at the top of `models/` have no category
and are not used. A model that gives no surface is skipped (found by trying,
so another version of the package may skip others; `skipped_models()` lists
them with their reasons). With inventor-data 2.1.5 one is skipped:
`scenes/chesschairs.iv`, a binary scene whose `File` node includes the
absolute path `/usr/share/data/models/chess/chessboard.iv`, which does not
exist (ivfix exits with status 99; it would also repeat `chess/chessboard.iv`).
`simple/text3.iv` does give faces with this ivfix (`Text3` is extruded), and
the `File` nodes of `chess/chessboard.iv` include the chess pieces, so that
model holds copies of the other chess models. That leaves 83 models in 14
categories. Categories with fewer than `min_models_per_category` (default 2)
usable models are dropped (none with the defaults); labels are the indices
of the remaining category names, sorted (`categories()`).

Splits by model (a model is in exactly one split): stratified `num_folds`-fold
cross-validation. Within each category the models are ordered by a SHA-256
hash of their path (salted with `split_seed`) and dealt to folds 0, 1, ...
in turn, each category starting where the previous one stopped, so the folds
are balanced overall and per category. `"test"` is fold `fold`;
`"validation"` the next `validation_folds` folds (cyclically); `"train"`
the rest. A different `split_seed` gives another partition (repeated
cross-validation).

The reader gives fixed clouds: augmentation (rotation, jitter, a new subset
of points per epoch) belongs to the task. For per-epoch subsampling, load
more points than the model uses (e.g. `num_points=8192`) and let the task
draw 2,048 of them.

Sampled clouds are cached as `.npy` files in `cache_dir` (default
`$KERAS_PERCEIVER_CACHE/inventor_point_clouds`, else
`~/.cache/keras_perceiver/inventor_point_clouds`), keyed by the SHA-256 of
the model file, its path, `num_points`, `seed` and the reader's version;
skipped models are cached with their reason. A second load reads only the
cache.
"""

import functools
import hashlib
import json
import os
import re
import shutil
import subprocess

import numpy as np
import tensorflow as tf

from training.data.sources import find_data_dir
from training.data.splits import check_split, hash_fraction

SPLITS = ("train", "validation", "test")
DEBIAN_PATH = "/usr/share/inventor/data/models"
ROOT_ENV_VAR = "KERAS_PERCEIVER_DATA_ROOT"
CACHE_ENV_VAR = "KERAS_PERCEIVER_CACHE"
MISSING_HINT = (
    "Run `make debian-data`, or install it with `apt-get install inventor-data inventor-clients` "
    "(Debian, as root), or unpack the packages without root: `apt-get download inventor-data "
    "inventor-clients libinventor1 && for f in *.deb; do dpkg -x $f ROOT; done` and set "
    "$KERAS_PERCEIVER_DATA_ROOT=ROOT."
)
CACHE_VERSION = "1"
IVFIX_ARGS = ("-a", "-f", "-n", "-t")
IVFIX_TIMEOUT_S = 120


class ModelError(ValueError):
    """A model that gives no point cloud: ivfix fails, or the scene has no faces of positive area."""


# ---------------------------------------------------------------------------------------------------------
# Locating the data and ivfix


def models_dir(data_dir=None):
    """The directory of the category folders: `data_dir`, else `$KERAS_PERCEIVER_DATA_ROOT` + the Debian path,
    else the Debian path.

    Raises:
        FileNotFoundError: naming the places looked at and how to install the data.
    """
    return find_data_dir(
        "inventor_point_clouds", data_dir, None, DEBIAN_PATH,
        lambda directory: os.path.isdir(directory) and bool(_category_dirs(directory)), MISSING_HINT,
        expected="category folders of .iv models",
    )  # fmt: skip


def _category_dirs(directory):
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    return [name for name in names if os.path.isdir(os.path.join(directory, name))]


def ivfix_command():
    """(path of `ivfix`, environment for it): `$KERAS_PERCEIVER_DATA_ROOT/usr/bin/ivfix` first, then `$PATH`.

    Raises:
        FileNotFoundError: when no ivfix is found (the message says to install inventor-clients).
    """
    env = dict(os.environ)
    root = os.environ.get(ROOT_ENV_VAR)
    if root and os.path.exists(os.path.join(root, "usr/bin/ivfix")):
        usr_lib = os.path.join(root, "usr/lib")
        libraries = [usr_lib, os.path.join(root, "lib")]
        if os.path.isdir(usr_lib):
            libraries += [os.path.join(usr_lib, n) for n in sorted(os.listdir(usr_lib)) if n.endswith("-gnu")]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(libraries + [env.get("LD_LIBRARY_PATH", "")])
        return os.path.join(root, "usr/bin/ivfix"), env
    path = shutil.which("ivfix")
    if path is None:
        raise FileNotFoundError(
            "inventor_point_clouds: `ivfix` not found on $PATH"
            + (f" nor in ${ROOT_ENV_VAR}/usr/bin" if root else "")
            + f". It flattens the .iv scenes. {MISSING_HINT}"
        )
    return path, env


def flatten(path):
    """The scene at `path` flattened by `ivfix -a -f -n -t`, as ASCII Open Inventor text.

    Raises:
        ModelError: if ivfix fails (exit status and its message).
    """
    ivfix, env = ivfix_command()
    try:
        result = subprocess.run(
            [ivfix, *IVFIX_ARGS, os.path.abspath(path)],
            capture_output=True,
            env=env,
            cwd=os.path.dirname(os.path.abspath(path)),
            timeout=IVFIX_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as error:
        raise ModelError(f"ivfix ran over {IVFIX_TIMEOUT_S} s") from error
    if result.returncode != 0 or not result.stdout.strip():
        lines = result.stderr.decode("utf-8", errors="replace").strip().splitlines()
        message = " ".join(line.strip() for line in lines[:2])[:300]
        raise ModelError(f"ivfix failed (exit status {result.returncode}): {message}")
    return result.stdout.decode("latin-1")


# ---------------------------------------------------------------------------------------------------------
# A small parser of flattened ASCII Open Inventor files

_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|[{}\[\]]|[^\s{}\[\],"]+')
_COMMENT = re.compile(r"#[^\n]*")


def _tokens(text):
    return _TOKEN.findall(_COMMENT.sub("", text))


def _is_node_start(tokens, i):
    return i + 1 < len(tokens) and tokens[i + 1] == "{" and tokens[i][:1].isalpha()


class _Parser:
    def __init__(self, text):
        self.tokens = _tokens(text)
        self.i = 0
        self.defs = {}

    def nodes(self):
        nodes = []
        while self.i < len(self.tokens):
            nodes.append(self.node())
        return nodes

    def node(self):
        """`[DEF name] Type { ... }` or `USE name` at the cursor, as a dict (or None for NULL)."""
        token = self.tokens[self.i]
        if token == "USE":
            name = self.tokens[self.i + 1]
            self.i += 2
            if name not in self.defs:
                raise ModelError(f"USE of an undefined node {name!r}")
            return self.defs[name]
        if token == "NULL":
            self.i += 1
            return None
        name = None
        if token == "DEF":
            name = self.tokens[self.i + 1]
            self.i += 2
        if not _is_node_start(self.tokens, self.i):
            received = self.tokens[self.i : self.i + 3]
            raise ModelError(f"expected a node at token {self.i}. Received: {received}")
        node = {"type": self.tokens[self.i], "fields": {}, "children": []}
        if name is not None:
            self.defs[name] = node
        self.i += 2
        tokens = self.tokens
        while self.i < len(tokens) and tokens[self.i] != "}":
            token = tokens[self.i]
            if token in ("DEF", "USE") or _is_node_start(tokens, self.i):
                node["children"].append(self.node())
                continue
            self.i += 1  # a field name; its value follows
            if self.i < len(tokens) and tokens[self.i] == "[":
                end = tokens.index("]", self.i)
                node["fields"][token] = tokens[self.i + 1 : end]
                self.i = end + 1
            elif self.i < len(tokens) and (
                tokens[self.i] in ("DEF", "USE", "NULL") or _is_node_start(tokens, self.i)
            ):
                node["fields"][token] = self.node()
            else:
                start = self.i
                while (
                    self.i < len(tokens)
                    and tokens[self.i] != "}"
                    and not tokens[self.i][:1].islower()
                    and tokens[self.i] not in ("DEF", "USE")
                    and not _is_node_start(tokens, self.i)
                ):
                    self.i += 1
                node["fields"][token] = tokens[start : self.i]
        self.i += 1  # the closing brace
        return node


def _floats(values, width):
    array = np.array([float(value) for value in values], dtype=np.float64)
    return array.reshape(-1, width)


def _ints(values):
    return np.array([int(value) for value in values], dtype=np.int64)


def _polygons_to_triangles(vertices, index, matrix):
    """Fan-triangulate `-1`-separated polygons of `index` into world-space triangles (T, 3, 3)."""
    triangles = []
    polygon = []
    for value in list(index) + [-1]:
        if value >= 0:
            polygon.append(value)
            continue
        for k in range(1, len(polygon) - 1):
            triangles.append((polygon[0], polygon[k], polygon[k + 1]))
        polygon = []
    if not triangles:
        return np.zeros((0, 3, 3))
    triangles = np.array(triangles, dtype=np.int64)
    if triangles.max() >= len(vertices):
        raise ModelError(f"coordIndex {int(triangles.max())} out of range of {len(vertices)} vertices")
    homogeneous = np.concatenate([vertices, np.ones((len(vertices), 1))], axis=1) @ matrix
    world = homogeneous[:, :3] / homogeneous[:, 3:]
    return world[triangles]


def _traverse(node, state, directory, out, depth=0):
    """Collect the triangles of `node` (and its children) into `out`; `state` = {"matrix", "coords"}."""
    if node is None:
        return
    kind = node["type"]
    fields = node["fields"]
    if kind in ("Separator", "TransformSeparator", "Annotation"):
        state = dict(state)
    elif kind == "MatrixTransform":
        # Row vectors, as in Open Inventor: p_world = p M_local M_parent.
        state["matrix"] = _floats(fields["matrix"], 4) @ state["matrix"]
    elif kind == "Coordinate3" and "point" in fields:
        state["coords"] = _floats(fields["point"], 3)
    elif kind in ("IndexedFaceSet", "FaceSet"):
        vertex_property = fields.get("vertexProperty")
        if isinstance(vertex_property, dict) and "vertex" in vertex_property["fields"]:
            vertices = _floats(vertex_property["fields"]["vertex"], 3)
        else:
            vertices = state["coords"]
        if vertices is None or not len(vertices):
            return
        if kind == "IndexedFaceSet":
            index = _ints(fields.get("coordIndex", []))
        else:
            start = int(fields.get("startIndex", ["0"])[0])
            index = []
            for count in _ints(fields.get("numVertices", [])):
                count = len(vertices) - start if count < 0 else int(count)
                index += list(range(start, start + count)) + [-1]
                start += count
        out.append(_polygons_to_triangles(vertices, index, state["matrix"]))
    elif kind == "File" and "name" in fields:
        if depth > 8:
            raise ModelError("File includes nested more than 8 deep")
        path = os.path.join(directory, fields["name"][0].strip('"'))
        for child in _Parser(flatten(path)).nodes():
            _traverse(child, state, os.path.dirname(path), out, depth + 1)
        return
    for child in node["children"]:
        _traverse(child, state, directory, out, depth)


def read_triangles(path):
    """The faces of the .iv scene at `path` in world coordinates, as float64 (T, 3, 3) triangles.

    Raises:
        ModelError: ivfix fails or the scene has no faces.
    """
    nodes = _Parser(flatten(path)).nodes()
    out = []
    state = {"matrix": np.eye(4), "coords": None}
    for node in nodes:
        _traverse(node, state, os.path.dirname(os.path.abspath(path)), out)
    triangles = np.concatenate(out) if out else np.zeros((0, 3, 3))
    if not len(triangles):
        raise ModelError("no faces (only text, lines or points)")
    return triangles


def _trimesh():
    try:
        import trimesh
    except ImportError as error:
        raise ImportError(
            "inventor_point_clouds samples surfaces with trimesh: `pip install trimesh` "
            "(or `pip install keras-perceiver[data]`)."
        ) from error
    return trimesh


def sample_points(triangles, num_points, seed):
    """`num_points` area-weighted surface samples of `triangles` (T, 3, 3), centred, in the unit sphere.

    Returns:
        float32 (num_points, 3): mean 0, largest norm 1.

    Raises:
        ModelError: if the total area is 0.
    """
    trimesh = _trimesh()
    vertices = triangles.reshape(-1, 3)
    faces = np.arange(len(vertices)).reshape(-1, 3)
    mesh = trimesh.Trimesh(vertices=vertices, faces=faces, process=False)
    if not np.isfinite(mesh.area) or mesh.area <= 0:
        raise ModelError("faces of zero total area")
    points, _ = trimesh.sample.sample_surface(mesh, int(num_points), seed=int(seed))
    points = points - points.mean(axis=0)
    radius = np.linalg.norm(points, axis=1).max()
    if radius <= 0:
        raise ModelError("all sampled points coincide")
    return (points / radius).astype(np.float32)


# ---------------------------------------------------------------------------------------------------------
# Model list, cache, splits


def model_paths(data_dir=None):
    """Sorted relative paths `<category>/<name>.iv` of the candidate models (before skipping failures)."""
    directory = models_dir(data_dir)
    paths = []
    for category in _category_dirs(directory):
        for name in sorted(os.listdir(os.path.join(directory, category))):
            if name.endswith(".iv") and os.path.isfile(os.path.join(directory, category, name)):
                paths.append(f"{category}/{name}")
    return paths


def default_cache_dir():
    """The cache of sampled clouds: `$KERAS_PERCEIVER_CACHE/inventor_point_clouds`, else that under
    `~/.cache/keras_perceiver`."""
    base = os.environ.get(CACHE_ENV_VAR) or os.path.join(os.path.expanduser("~"), ".cache", "keras_perceiver")
    return os.path.join(base, "inventor_point_clouds")


def _model_seed(model, seed):
    return int(hash_fraction(model, salt=f"inventor_point_clouds:sample:{seed}") * 2**32)


def point_cloud(directory, model, num_points=2048, seed=0, cache_dir=None):
    """The cloud of one model (float32 (num_points, 3)), read from or written to the cache.

    Args:
        directory: str, the models directory (`models_dir()`).
        model: str, `<category>/<name>.iv` relative to it.
        num_points, seed: see `load`.
        cache_dir: str or None (`default_cache_dir()`); False disables the cache.

    Raises:
        ModelError: the model gives no cloud (also when cached as skipped).
    """
    path = os.path.join(directory, model)
    with open(path, "rb") as f:
        content = f.read()
    parts = [content] + [str(part).encode() for part in (model, num_points, seed, CACHE_VERSION)]
    key = hashlib.sha256(b"\0".join(parts)).hexdigest()[:24]
    cache_file = None
    if cache_dir is not False:
        cache_dir = cache_dir or default_cache_dir()
        stem = model.replace("/", "__")[: -len(".iv")]
        cache_file = os.path.join(cache_dir, f"{stem}-{key}")
        if os.path.exists(cache_file + ".npy"):
            return np.load(cache_file + ".npy")
        if os.path.exists(cache_file + ".skipped.json"):
            with open(cache_file + ".skipped.json") as f:
                raise ModelError(json.load(f)["reason"])
    try:
        points = sample_points(read_triangles(path), num_points, _model_seed(model, seed))
    except ModelError as error:
        if cache_file is not None:
            os.makedirs(cache_dir, exist_ok=True)
            with open(cache_file + ".skipped.json", "w") as f:
                json.dump({"model": model, "reason": str(error)}, f)
        raise
    if cache_file is not None:
        os.makedirs(cache_dir, exist_ok=True)
        temporary = f"{cache_file}.{os.getpid()}.tmp.npy"
        np.save(temporary, points)
        os.replace(temporary, cache_file + ".npy")
    return points


@functools.lru_cache(maxsize=8)
def _load_all(directory, categories, num_points, seed, cache_dir):
    """({model: cloud}, {model: skip reason}) of the models of `categories` (None: all)."""
    clouds, skipped = {}, {}
    for model in model_paths(directory):
        if categories is not None and model.split("/")[0] not in categories:
            continue
        try:
            clouds[model] = point_cloud(directory, model, num_points, seed, cache_dir)
        except ModelError as error:
            skipped[model] = str(error)
    return clouds, skipped


def _options(data_dir, categories, num_points, seed, cache_dir):
    directory = models_dir(data_dir)
    if isinstance(categories, str):
        categories = tuple(name.strip() for name in categories.split(","))
    if categories is not None:
        categories = tuple(sorted(set(categories)))
        unknown = sorted(set(categories) - set(_category_dirs(directory)))
        if unknown:
            raise ValueError(
                f"inventor_point_clouds: unknown categories {unknown}. Expected some of "
                f"{_category_dirs(directory)}. Received: categories={categories!r}"
            )
    if int(num_points) < 1:
        raise ValueError(f"inventor_point_clouds: num_points must be >= 1. Received: {num_points!r}")
    cache_dir = False if cache_dir is False else (str(cache_dir) if cache_dir else default_cache_dir())
    return directory, categories, int(num_points), int(seed), cache_dir


def models(
    data_dir=None, categories=None, num_points=2048, seed=0, cache_dir=None, min_models_per_category=2
):
    """The usable models as (sorted list of `<category>/<name>.iv`, sorted category names).

    Loads (or reads from the cache) every cloud once: a model is usable when
    it gives a cloud; categories with fewer than `min_models_per_category`
    usable models are dropped.
    """
    clouds, _ = _load_all(*_options(data_dir, categories, num_points, seed, cache_dir))
    counts = {}
    for model in clouds:
        counts[model.split("/")[0]] = counts.get(model.split("/")[0], 0) + 1
    names = sorted(name for name, count in counts.items() if count >= int(min_models_per_category))
    return sorted(model for model in clouds if model.split("/")[0] in names), names


def categories(data_dir=None, **options):
    """The category names in label order (sorted; see `models` for the options and the dropping rule)."""
    return models(data_dir, **options)[1]


def skipped_models(data_dir=None, categories=None, num_points=2048, seed=0, cache_dir=None):
    """{model: reason} of the models that give no point cloud."""
    return dict(_load_all(*_options(data_dir, categories, num_points, seed, cache_dir))[1])


def assign_folds(model_list, num_folds=5, split_seed=0):
    """{model: fold}: per category, models ordered by hash of their path and dealt round-robin.

    Each category starts at the fold where the previous one (in sorted order)
    stopped, so folds differ in size by at most one model overall and per
    category.
    """
    by_category = {}
    for model in sorted(model_list):
        by_category.setdefault(model.split("/")[0], []).append(model)
    folds, position = {}, 0
    for category in sorted(by_category):
        salt = f"inventor_point_clouds:{split_seed}"
        ordered = sorted(by_category[category], key=lambda m: (hash_fraction(m, salt=salt), m))
        for model in ordered:
            folds[model] = position % num_folds
            position += 1
    return folds


def split_models(split, model_list, num_folds=5, fold=0, validation_folds=1, split_seed=0):
    """The sorted models of `split` (see the module docstring for the fold rule)."""
    check_split("inventor_point_clouds", split, SPLITS)
    if int(num_folds) < 2:
        raise ValueError(f"inventor_point_clouds: num_folds must be >= 2. Received: {num_folds!r}")
    if not 0 <= int(fold) < int(num_folds):
        raise ValueError(f"inventor_point_clouds: fold must be in [0, {num_folds}). Received: {fold!r}")
    if not 0 <= int(validation_folds) <= int(num_folds) - 2:
        raise ValueError(
            f"inventor_point_clouds: validation_folds must be in [0, num_folds - 2 = {int(num_folds) - 2}]. "
            f"Received: {validation_folds!r}"
        )
    if split == "validation" and int(validation_folds) == 0:
        raise ValueError(
            "inventor_point_clouds: the validation split needs validation_folds > 0. Received: 0"
        )
    folds = assign_folds(model_list, int(num_folds), split_seed)
    validation = {(int(fold) + k) % int(num_folds) for k in range(1, int(validation_folds) + 1)}
    if split == "test":
        chosen = {int(fold)}
    elif split == "validation":
        chosen = validation
    else:
        chosen = set(range(int(num_folds))) - validation - {int(fold)}
    return sorted(model for model, f in folds.items() if f in chosen)


def load_arrays(
    split,
    data_dir=None,
    num_points=2048,
    num_folds=5,
    fold=0,
    validation_folds=1,
    split_seed=0,
    seed=0,
    categories=None,
    min_models_per_category=2,
    cache_dir=None,
):
    """The split as numpy: (points float32 (N, num_points, 3), labels int64 (N,), model paths list of str)."""
    check_split("inventor_point_clouds", split, SPLITS)
    options = _options(data_dir, categories, num_points, seed, cache_dir)
    clouds, _ = _load_all(*options)
    model_list, names = models(data_dir, categories, num_points, seed, cache_dir, min_models_per_category)
    chosen = split_models(split, model_list, num_folds, fold, validation_folds, split_seed)
    points = np.stack([clouds[m] for m in chosen]) if chosen else np.zeros((0, options[2], 3), np.float32)
    labels = np.array([names.index(m.split("/")[0]) for m in chosen], dtype=np.int64)
    return points, labels, chosen


def load(
    split,
    data_dir=None,
    num_points=2048,
    num_folds=5,
    fold=0,
    validation_folds=1,
    split_seed=0,
    seed=0,
    categories=None,
    min_models_per_category=2,
    cache_dir=None,
):
    """The `split` of the Inventor point clouds as a `tf.data.Dataset` of unbatched examples.

    Args:
        split: str, `"train"`, `"validation"` or `"test"`.
        data_dir: str or None, the models directory (holding the category
            folders); None looks at `$KERAS_PERCEIVER_DATA_ROOT/usr/share/inventor/data/models`,
            then `/usr/share/inventor/data/models`.
        num_points: int, points per cloud. Defaults to 2048.
        num_folds: int >= 2, cross-validation folds. Defaults to 5.
        fold: int in [0, num_folds), the test fold. Defaults to 0.
        validation_folds: int in [0, num_folds - 2], folds after `fold`
            used for validation. Defaults to 1 (train 3/5, validation 1/5,
            test 1/5 with 5 folds).
        split_seed: int, salt of the hash that orders the models in the
            folds. Defaults to 0.
        seed: int, seed of the surface sampling. Defaults to 0.
        categories: None (all), or a sequence (or comma-separated str) of
            category folder names to use; labels index the sorted kept names.
        min_models_per_category: int, categories with fewer usable models
            are dropped. Defaults to 2.
        cache_dir: str, None (`default_cache_dir()`) or False (no cache).

    Returns:
        `tf.data.Dataset` of {"points": float32 (num_points, 3), unit sphere;
        "label": int64 (); "model": tf.string (), `<category>/<name>.iv`},
        sorted by model path.

    Raises:
        FileNotFoundError: the models or `ivfix` are missing (the message says
            `apt-get install inventor-data inventor-clients`).
        ImportError: trimesh is missing.
        ValueError: unknown split or category, bad fold options.

    Example:
    >>> from training.data.inventor_point_clouds import load
    >>> next(iter(load("test", fold=2)))["points"].shape  # doctest: +SKIP
    TensorShape([2048, 3])
    """
    points, labels, chosen = load_arrays(
        split, data_dir, num_points, num_folds, fold, validation_folds, split_seed, seed, categories,
        min_models_per_category, cache_dir,
    )  # fmt: skip
    return tf.data.Dataset.from_tensor_slices(
        {"points": points, "label": labels, "model": tf.constant(chosen, tf.string, shape=(len(chosen),))}
    )
