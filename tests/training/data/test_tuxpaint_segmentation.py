"""Tests of the `tuxpaint_segmentation` reader on Debian's tuxpaint-stamps-default (CI installs it)."""

import os

import numpy as np
import pytest

from tests.test_case import TestCase
from tests.training.data.helpers import (
    as_numpy,
    assert_unbatched_dict,
    debian_data_hint,
    tuxpaint_stamps_dir,
)
from training.data import tuxpaint_segmentation as ts

INSTALL = "apt-get install tuxpaint-stamps-default"


STAMPS = tuxpaint_stamps_dir()
# Skipped without the data (a failure under CI=true: tests/conftest.py).
needs_data = pytest.mark.skipif(
    STAMPS is None, reason=f"needs the Tux Paint stamps: {debian_data_hint('tuxpaint_segmentation')}"
)
PHOTOS = (
    "animals/birds/quetzal.png",
    "animals/fish/lionfish.png",
    "animals/insects/grasshopper.png",
    "animals/mammals/cats/tiger.png",
    "food/fruit/banana.png",
    "food/fruit/strawberry.png",
    "food/nuts/walnut_shelled.png",
    "household/tools/measuring_tape.png",
    "household/tools/measuring_tape_mirror.png",
)
DRAWN = ("symbols/alphabets/asl/asl_a.png", "animals/insects/cartoon/fly.png", "symbols/chess/b_6_pawn.png")


def small_stamps_dir(directory):
    """A stamps directory of a few real stamps (links), with their .dat files."""
    for stamp in PHOTOS + DRAWN:
        for suffix in (".png", ".dat"):
            source = os.path.join(STAMPS, stamp[: -len(".png")] + suffix)
            if os.path.exists(source):
                target = os.path.join(directory, stamp[: -len(".png")] + suffix)
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.symlink(source, target)
    return directory


@needs_data
class TuxpaintSegmentationTest(TestCase):
    def setUp(self):
        super().setUp()
        self.data_dir = small_stamps_dir(self.make_temp_dir())
        self.fractions = {"test_fraction": 0.3, "validation_fraction": 0.2}

    def test_examples_and_photo_filter(self):
        kept, names = ts.stamps(self.data_dir)
        self.assertEqual(kept, sorted(PHOTOS))  # the colorable, cartoon and flat-filled stamps are dropped
        self.assertEqual(names, ["animals", "food", "household"])
        self.assertLen(ts.stamps(self.data_dir, photos_only=False)[0], len(PHOTOS) + len(DRAWN))
        dataset = ts.load("train", self.data_dir, image_size=32, examples_per_stamp=2, **self.fractions)
        assert_unbatched_dict(
            dataset,
            {
                "image": ("uint8", (32, 32, 3)),
                "mask": ("uint8", (32, 32)),
                "label": ("int64", ()),
                "stamp": ("string", ()),
            },
        )
        examples = as_numpy(dataset)
        self.assertEqual(set(np.unique(examples["mask"])), {0, 1})
        coverage = examples["mask"].mean(axis=(1, 2))
        self.assertTrue(np.all(coverage > 0.01) and np.all(coverage < 0.9), coverage)
        for stamp, label in zip(examples["stamp"], examples["label"]):
            self.assertEqual(names[label], stamp.split("/")[0])
        # The two pastes of a stamp differ (another background, scale, place); backgrounds are photos.
        self.assertEqual(examples["stamp"][0], examples["stamp"][1])
        self.assertFalse(np.array_equal(examples["image"][0], examples["image"][1]))
        self.assertGreater(float(examples["image"].std()), 20.0)
        classes = ts.load("train", self.data_dir, image_size=32, mask_mode="class", **self.fractions)
        classes = as_numpy(classes)
        np.testing.assert_array_equal(
            classes["mask"], examples["mask"][::2] * (examples["label"][::2, None, None] + 1)
        )

    def test_deterministic_per_seed(self):
        first = as_numpy(ts.load("train", self.data_dir, image_size=24, seed=5, **self.fractions))
        again = as_numpy(ts.load("train", self.data_dir, image_size=24, seed=5, **self.fractions))
        other = as_numpy(ts.load("train", self.data_dir, image_size=24, seed=6, **self.fractions))
        for key in ("image", "mask"):
            np.testing.assert_array_equal(first[key], again[key])
        self.assertFalse(np.array_equal(first["image"], other["image"]))
        # A paste depends on the seed, the stamp and k only: the same with more pastes per stamp.
        more = ts.load("train", self.data_dir, image_size=24, seed=5, examples_per_stamp=2, **self.fractions)
        more = as_numpy(more)
        np.testing.assert_array_equal(more["image"][::2], first["image"])

    def test_split_by_stamp(self):
        parts = {}
        for split in ts.SPLITS:
            try:
                dataset = ts.load(split, self.data_dir, image_size=16, **self.fractions)
            except ValueError as error:
                self.assertIn("holds no stamp", str(error))
                parts[split] = set()
                continue
            parts[split] = set(as_numpy(dataset)["stamp"])
        self.assertTrue(parts["train"] and parts["test"])
        self.assertEqual(set.union(*parts.values()), set(PHOTOS))
        self.assertEqual(sum(len(p) for p in parts.values()), len(PHOTOS))  # disjoint
        for part in parts.values():  # a stamp and its mirrored twin share a split
            twin = "household/tools/measuring_tape_mirror.png" in part
            self.assertEqual("household/tools/measuring_tape.png" in part, twin)
        # The whole package: disjoint by split key.
        kept, _ = ts.stamps()
        keys = [ts.split_key(stamp) for stamp in kept]
        masks = [ts.hash_split_mask(keys, split, 0.2, 0.1, salt="tuxpaint") for split in ts.SPLITS]
        np.testing.assert_array_equal(np.sum(masks, axis=0), 1)
        self.assertGreater(len(kept), 300)

    def test_unscaled_paste_mask_is_the_alpha_channel(self):
        stamp = "food/nuts/walnut_shelled.png"  # 22 x 25 pixels
        rgba = ts.read_stamp(os.path.join(STAMPS, stamp))
        height, width = rgba.shape[:2]
        background = np.full((30, 40, 3), 7, np.uint8)
        image, mask = (np.asarray(x) for x in ts.composite(background, rgba, 3, 5))
        expected = np.zeros((30, 40), np.uint8)
        expected[3 : 3 + height, 5 : 5 + width] = rgba[..., 3] >= 128
        np.testing.assert_array_equal(mask, expected)
        opaque = rgba[..., 3] == 255
        np.testing.assert_array_equal(image[3 : 3 + height, 5 : 5 + width][opaque], rgba[..., :3][opaque])
        self.assertTrue(np.all(image[:3] == 7) and np.all(image[:, :5] == 7))
        # Through the reader: longer side = image_size and scale 1 keep the stamp's own pixels.
        directory = self.make_temp_dir()
        for name in ("walnut_shelled.png", "walnut.png"):
            os.makedirs(os.path.join(directory, "food"), exist_ok=True)
            os.symlink(os.path.join(STAMPS, "food/nuts", name), os.path.join(directory, "food", name))
        examples = []
        for split in ts.SPLITS:
            try:
                dataset = ts.load(split, directory, image_size=max(height, width), scale_range=(1.0, 1.0))
            except ValueError:  # an empty split
                continue
            examples += [e for e in dataset.as_numpy_iterator() if e["stamp"] == b"food/walnut_shelled.png"]
        (example,) = examples
        offsets = [
            (y, x)
            for y in range(max(height, width) - height + 1)
            for x in range(max(height, width) - width + 1)
            if np.array_equal(example["mask"][y : y + height, x : x + width], rgba[..., 3] >= 128)
        ]
        self.assertTrue(offsets)
        self.assertEqual(int(example["mask"].sum()), int((rgba[..., 3] >= 128).sum()))


class TuxpaintErrorsTest(TestCase):
    def test_missing_data_says_how_to_install(self):
        empty = self.make_temp_dir()
        with pytest.raises(FileNotFoundError, match=f"data_dir={empty!r}.*{INSTALL}"):
            ts.load("test", data_dir=empty)
        os.environ[ts.ROOT_ENV_VAR] = empty
        self.addCleanup(os.environ.pop, ts.ROOT_ENV_VAR)
        expected = os.path.join(empty, "usr/share/tuxpaint/stamps")
        if STAMPS is None:
            with pytest.raises(FileNotFoundError, match="dpkg -x"):
                ts.stamps_dir()
        else:
            os.makedirs(os.path.dirname(expected))
            os.symlink(STAMPS, expected)
            self.assertEqual(ts.stamps_dir(), expected)
        with pytest.raises(ValueError, match="mask_mode"):
            ts.load("test", mask_mode="soft")
        with pytest.raises(ValueError, match="unknown split"):
            ts.load("dev")

    def test_flatness(self):
        flat = np.zeros((4, 5, 4), np.uint8)
        flat[..., 3] = 255
        self.assertEqual(ts.flatness(flat), 1.0)
        noisy = flat.copy()
        noisy[..., 0] = np.arange(20).reshape(4, 5)
        self.assertEqual(ts.flatness(noisy), 0.0)
        self.assertEqual(ts.split_key("a/b_mirror.png"), "a/b.png")
