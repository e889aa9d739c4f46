"""Self-tests of the fuzz harness: it fails on framework errors, wrong types, unnamed values and silence."""

import tensorflow as tf

from tests.fuzz.harness import COUNTS, WORKS, Fuzzer, Raises
from tests.test_case import TestCase


def raise_(error):
    raise error


class FuzzerTest(TestCase):
    def tearDown(self):
        COUNTS.pop("self-test", None)  # the session's counts are the real entry points'
        super().tearDown()

    def test_each_wrong_outcome_is_a_failure(self):
        fuzzer = Fuzzer("self-test", minimum_cases=1)
        expect = Raises(ValueError, "shape=(2, 3)")
        fuzzer.check("named", lambda: raise_(ValueError("Received: shape=(2, 3)")), expect)
        fuzzer.check("works", lambda: 1, WORKS, validate=lambda result: None)
        self.assertEqual(fuzzer.failures, [])
        fuzzer.check(
            "framework error", lambda: raise_(tf.errors.InvalidArgumentError(None, None, "x")), expect
        )
        fuzzer.check("subclass", lambda: raise_(UnicodeError("shape=(2, 3)")), expect)
        fuzzer.check("unnamed value", lambda: raise_(ValueError("bad shape")), expect)
        fuzzer.check("silence", lambda: 1, expect)
        fuzzer.check("error on a valid case", lambda: raise_(KeyError("x")), WORKS)
        fuzzer.check("wrong result", lambda: 1, WORKS, validate=lambda result: "gave 1")
        self.assertLen(fuzzer.failures, 6)
        with self.assertRaises(AssertionError):
            fuzzer.finish(self)

    def test_too_few_cases_is_a_failure(self):
        fuzzer = Fuzzer("self-test", minimum_cases=2)
        fuzzer.check("one", lambda: 1, WORKS)
        with self.assertRaisesRegex(AssertionError, "only 1 cases ran"):
            fuzzer.finish(self)
