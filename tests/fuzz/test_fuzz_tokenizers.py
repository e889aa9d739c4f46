"""Fuzz cases for the tokenizers (`ByteTokenizer`, `SentencePieceTokenizer`): random Unicode text of any
length (empty, emoji, scripts the SentencePiece model never saw) tokenizes and detokenizes back to itself;
strings of the wrong rank, non-string inputs, and token ids that are floats, of the wrong rank or out of the
vocabulary raise a named error naming the received value.
"""

import numpy as np
from absl.testing import parameterized

from keras_perceiver.tokenizers import ByteTokenizer, SentencePieceTokenizer
from tests.fuzz.harness import WORKS, Fuzzer, Raises
from tests.test_case import TestCase
from tests.tokenizers.test_sentencepiece_tokenizer import trained_proto

DRAWS = 12
MINIMUM_CASES = 60
# Code points drawn for random text: ASCII, Latin-1, CJK, emoji (4 UTF-8 bytes), combining marks.
ALPHABETS = (range(0x20, 0x7F), range(0xA0, 0x100), range(0x4E00, 0x4F00), range(0x1F600, 0x1F650), (0x301,))


def random_text(rng):
    length = int(rng.choice([0, 1, 5, 40, 300]))
    points = [int(rng.choice(ALPHABETS[rng.randint(len(ALPHABETS))])) for _ in range(length)]
    return "".join(map(chr, points))


def round_trips(tokenizer, texts):
    def validate(outputs):
        back = tokenizer.detokenize(outputs["token_ids"]).numpy()
        back = [back] if np.ndim(back) == 0 else list(back)
        decoded = [b.decode("utf-8") for b in back]
        return None if decoded == texts else f"detokenized to {decoded!r}, not {texts!r}"

    return validate


TOKENIZERS = {
    "ByteTokenizer": lambda: ByteTokenizer(),
    "ByteTokenizer(sequence_length=16, add_special_tokens=True)": lambda: ByteTokenizer(16, True),
    "SentencePieceTokenizer": lambda: SentencePieceTokenizer(trained_proto()),
}


class TokenizerFuzzTest(TestCase, parameterized.TestCase):
    @parameterized.named_parameters((name.split("(")[0] + str(i), name) for i, name in enumerate(TOKENIZERS))
    def test_fuzz(self, name):
        tokenizer = TOKENIZERS[name]()
        truncates = getattr(tokenizer, "sequence_length", None) is not None
        rng = np.random.RandomState(sum(map(ord, name)))
        fuzzer = Fuzzer(name, MINIMUM_CASES)
        vocab_size = tokenizer.vocab_size
        for _ in range(DRAWS):
            texts = [random_text(rng) for _ in range(int(rng.choice([1, 2, 5])))]
            validate = None if truncates else round_trips(tokenizer, texts)
            fuzzer.check(f"batch of {len(texts)}", lambda t=texts: tokenizer(t), WORKS, validate)
            text = texts[0]
            validate = None if truncates else round_trips(tokenizer, [text])
            fuzzer.check(f"scalar of {len(text)}", lambda t=text: tokenizer(t), WORKS, validate)

            # Strings of rank 2 (e.g. unjoined sentence pairs) and non-string inputs.
            pairs = np.array([[text, text]] * int(rng.randint(1, 3)))
            fuzzer.check(
                f"strings {pairs.shape}", lambda p=pairs: tokenizer(p), Raises(ValueError, str(pairs.shape))
            )
            numbers = rng.randint(0, 100, size=int(rng.randint(1, 4))).astype(
                rng.choice(["int32", "float32"])
            )
            fuzzer.check(
                f"{numbers.dtype} inputs",
                lambda n=numbers: tokenizer(n),
                Raises(TypeError, f"dtype={numbers.dtype.name}"),
            )

            # detokenize: ids in range work; floats, rank 3 and ids out of range are refused.
            ids = rng.randint(0, vocab_size, size=(int(rng.randint(0, 3)), int(rng.randint(0, 9))))
            fuzzer.check(f"detokenize {ids.shape}", lambda i=ids: tokenizer.detokenize(i), WORKS)
            bad = ids.astype("float32")
            fuzzer.check(
                "detokenize floats", lambda b=bad: tokenizer.detokenize(b), Raises(TypeError, "dtype=float32")
            )
            bad = np.zeros((1,) + ids.shape + (2,), "int32")
            fuzzer.check(
                f"detokenize {bad.shape}",
                lambda b=bad: tokenizer.detokenize(b),
                Raises(ValueError, str(bad.shape)),
            )
            bad = rng.randint(0, vocab_size, size=(2, 5))
            bad[1, int(rng.randint(5))] = int(rng.choice([-1, vocab_size, vocab_size + 1000]))
            fuzzer.check(
                f"detokenize id {bad.min() if bad.min() < 0 else bad.max()}",
                lambda b=bad: tokenizer.detokenize(b),
                Raises(ValueError, f"the id {bad.min() if bad.min() < 0 else bad.max()}"),
            )
        fuzzer.finish(self)
