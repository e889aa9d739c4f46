"""Tests of the `inventor_point_clouds` reader on Debian inventor-data and inventor-clients (CI has them)."""

import os
import shutil
import tempfile

import numpy as np
import pytest

from tests.test_case import TestCase
from tests.training.data.helpers import as_numpy, assert_unbatched_dict, debian_data_hint
from training.data import inventor_point_clouds as ipc

INSTALL = "apt-get install inventor-data inventor-clients"


def _have_data():
    try:
        ipc.models_dir()
        ipc.ivfix_command()
    except FileNotFoundError:
        return False
    return True


# Skipped without the data (a failure under CI=true: tests/conftest.py).
needs_data = pytest.mark.skipif(
    not _have_data(),
    reason=f"needs the Inventor models and ivfix: {debian_data_hint('inventor_point_clouds')}",
)
SMALL = ("chess", "food")  # 7 + 4 models: a first load takes about a second
POINTS = 256


@needs_data
class InventorPointCloudsTest(TestCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cache = tempfile.mkdtemp(prefix="inventor_cache_")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.cache, ignore_errors=True)
        super().tearDownClass()

    def load(self, split, **options):
        options = {"categories": SMALL, "num_points": POINTS, "cache_dir": self.cache, **options}
        return ipc.load(split, **options)

    def test_examples_shapes_and_unit_sphere(self):
        dataset = self.load("test", fold=0)
        assert_unbatched_dict(
            dataset, {"points": ("float32", (POINTS, 3)), "label": ("int64", ()), "model": ("string", ())}
        )
        names = ipc.categories(categories=SMALL, num_points=POINTS, cache_dir=self.cache)
        self.assertEqual(names, list(SMALL))
        examples = as_numpy(dataset)
        self.assertLen(examples["model"], 3)  # 11 models in 5 folds: 3, 2, 2, 2, 2
        norms = np.linalg.norm(examples["points"], axis=-1)
        np.testing.assert_allclose(norms.max(axis=1), 1.0, rtol=1e-5)
        np.testing.assert_allclose(examples["points"].mean(axis=1), 0.0, atol=1e-5)
        for model, label in zip(examples["model"], examples["label"]):
            self.assertEqual(SMALL[label], model.split("/")[0])
        # Surface samples of a real solid: spread over the sphere, not collapsed onto a few points.
        self.assertGreater(float(np.median(norms)), 0.3)
        self.assertEqual(len(np.unique(examples["points"][0], axis=0)), POINTS)

    def test_same_seed_same_cloud_and_cache(self):
        directory = ipc.models_dir()
        first = ipc.point_cloud(directory, "chess/pawn.iv", POINTS, seed=0, cache_dir=False)
        again = ipc.point_cloud(directory, "chess/pawn.iv", POINTS, seed=0, cache_dir=False)
        other = ipc.point_cloud(directory, "chess/pawn.iv", POINTS, seed=1, cache_dir=False)
        np.testing.assert_array_equal(first, again)
        self.assertGreater(float(np.abs(first - other).max()), 0.01)
        cache = self.make_temp_dir()
        cached = ipc.point_cloud(directory, "chess/pawn.iv", POINTS, seed=0, cache_dir=cache)
        np.testing.assert_array_equal(cached, first)
        (name,) = os.listdir(cache)
        self.assertTrue(name.startswith("chess__pawn-") and name.endswith(".npy"), name)
        np.save(os.path.join(cache, name), np.zeros_like(first))  # the second read comes from the cache
        np.testing.assert_array_equal(ipc.point_cloud(directory, "chess/pawn.iv", POINTS, 0, cache), 0.0)

    def test_folds_split_by_model(self):
        everything = set()
        tests = []
        for fold in range(5):
            parts = {split: set(as_numpy(self.load(split, fold=fold))["model"]) for split in ipc.SPLITS}
            self.assertFalse(parts["train"] & parts["validation"])
            self.assertFalse(parts["train"] & parts["test"])
            self.assertFalse(parts["validation"] & parts["test"])
            union = parts["train"] | parts["validation"] | parts["test"]
            if everything:
                self.assertEqual(union, everything)
            everything = union
            tests.append(parts["test"])
        self.assertLen(everything, 11)
        # Every model is in exactly one test fold.
        self.assertEqual(sorted(m for test in tests for m in test), sorted(everything))
        # The whole package (no sampling needed): stratified folds of near-equal size, a new split_seed
        # reorders them.
        paths = ipc.model_paths()
        folds = ipc.assign_folds(paths, num_folds=5)
        sizes = np.bincount(list(folds.values()), minlength=5)
        self.assertLessEqual(sizes.max() - sizes.min(), 1)
        for category in {path.split("/")[0] for path in paths}:
            counts = np.bincount([f for m, f in folds.items() if m.startswith(category + "/")], minlength=5)
            self.assertLessEqual(counts.max() - counts.min(), 1, category)
        self.assertNotEqual(folds, ipc.assign_folds(paths, num_folds=5, split_seed=1))
        with pytest.raises(ValueError, match="fold must be in"):
            self.load("test", fold=5)
        with pytest.raises(ValueError, match="needs validation_folds > 0"):
            self.load("validation", validation_folds=0)

    def test_skips_the_scene_ivfix_cannot_read(self):
        skipped = ipc.skipped_models(categories=("scenes",), num_points=POINTS, cache_dir=self.cache)
        self.assertEqual(list(skipped), ["scenes/chesschairs.iv"])
        self.assertIn("ivfix failed", skipped["scenes/chesschairs.iv"])
        model_list, names = ipc.models(categories=("scenes",), num_points=POINTS, cache_dir=self.cache)
        self.assertEqual(names, ["scenes"])
        self.assertNotIn("scenes/chesschairs.iv", model_list)

    def test_data_root_env_var(self):
        root = self.make_temp_dir()
        target = os.path.join(root, "usr/share/inventor/data")
        os.makedirs(target)
        os.symlink(ipc.models_dir(), os.path.join(target, "models"))
        os.environ[ipc.ROOT_ENV_VAR] = root
        self.addCleanup(os.environ.pop, ipc.ROOT_ENV_VAR)
        self.assertEqual(ipc.models_dir(), os.path.join(root, "usr/share/inventor/data/models"))


class InventorParserAndErrorsTest(TestCase):
    def test_parser_applies_transforms_and_reuses_defs(self):
        text = """#Inventor V2.1 ascii
        Separator {
            MatrixTransform { matrix 2 0 0 0  0 2 0 0  0 0 2 0  10 0 0 1 }
            DEF tri IndexedFaceSet {
                vertexProperty VertexProperty {
                    vertex [ 0 0 0, 1 0 0, 0 1 0, 1 1 0 ] materialBinding OVERALL
                }
                coordIndex [ 0, 1, 3, 2, -1 ]
            }
        }
        Coordinate3 { point [ 0 0 0, 0 0 1, 0 1 1 ] }
        FaceSet { vertexProperty NULL numVertices [ 3 ] }
        USE tri
        Text2 { string "not a face" }
        """
        out = []
        state = {"matrix": np.eye(4), "coords": None}
        for node in ipc._Parser(text).nodes():
            ipc._traverse(node, state, ".", out)
        triangles = np.concatenate(out)
        self.assertEqual(triangles.shape, (5, 3, 3))  # a quad (2) scaled, a triangle, the quad again (2)
        # Row vectors (p M): scaled, then moved.
        np.testing.assert_allclose(triangles[0], [[10, 0, 0], [12, 0, 0], [12, 2, 0]])
        np.testing.assert_allclose(triangles[2], [[0, 0, 0], [0, 0, 1], [0, 1, 1]])
        np.testing.assert_allclose(triangles[3], [[0, 0, 0], [1, 0, 0], [1, 1, 0]])  # outside the Separator
        points = ipc.sample_points(triangles, 100, seed=3)
        np.testing.assert_allclose(np.linalg.norm(points, axis=1).max(), 1.0, rtol=1e-6)
        with pytest.raises(ipc.ModelError, match="zero total area"):
            ipc.sample_points(np.zeros((2, 3, 3)), 10, seed=0)

    def test_missing_data_says_how_to_install(self):
        empty = self.make_temp_dir()
        with pytest.raises(FileNotFoundError, match=f"data_dir={empty!r}.*{INSTALL}"):
            ipc.load("test", data_dir=empty)
        os.environ[ipc.ROOT_ENV_VAR] = empty
        self.addCleanup(os.environ.pop, ipc.ROOT_ENV_VAR)
        if not os.path.isdir(ipc.DEBIAN_PATH):
            with pytest.raises(FileNotFoundError, match="KERAS_PERCEIVER_DATA_ROOT.*dpkg -x"):
                ipc.models_dir()
        with pytest.raises(ValueError, match="unknown split"):
            ipc.split_models("dev", [])
