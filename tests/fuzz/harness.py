"""The fuzz harness: generated inputs for the public entry points, each with the outcome it must have.

A case is (entry point, label, thunk, expectation). `WORKS` means the call must
return; `Raises(ExceptionType, received)` means exactly that exception type (not
a subclass, not a framework error such as `InvalidArgumentError`, `KeyError` or
`AttributeError`) with `received`, the bad value as the code under test prints
it, in the message. Cases are drawn from a seeded `numpy.random.RandomState`,
so a failure reproduces. `Fuzzer.finish` fails the test with every failed case
and checks the entry point's minimum number of cases; `COUNTS` (entry point ->
cases run) is printed at the end of the session by `tests/conftest.py`.
"""

import collections
import dataclasses

COUNTS = collections.Counter()
WORKS = None


@dataclasses.dataclass(frozen=True)
class Raises:
    """The expected outcome of a bad case: `exception` exactly, its message holding `received`."""

    exception: type
    received: str


class Fuzzer:
    """Runs the cases of one entry point and collects their failures."""

    def __init__(self, entry_point, minimum_cases):
        self.entry_point = entry_point
        self.minimum_cases = minimum_cases
        self.failures = []
        self.count = 0

    def check(self, label, thunk, expect, validate=None):
        """Run `thunk()` and compare its outcome with `expect` (`WORKS` or a `Raises`).

        Args:
            label: str, the case's description (what was changed).
            thunk: callable without arguments, the call under test.
            expect: `WORKS` or `Raises`.
            validate: optional callable on the result of a case that works; it
                returns an error string (or None when the result is right).
        """
        self.count += 1
        COUNTS[self.entry_point] += 1
        try:
            result = thunk()
        except Exception as error:  # noqa: BLE001 - the harness classifies every exception
            kind = f"{type(error).__module__}.{type(error).__name__}"
            message = " ".join(str(error).split())[:400]
            if expect is WORKS:
                self.failures.append(f"[{label}] expected to work; raised {kind}: {message}")
            elif type(error) is not expect.exception:
                self.failures.append(
                    f"[{label}] expected {expect.exception.__name__}; raised {kind}: {message}"
                )
            elif expect.received not in str(error):
                self.failures.append(
                    f"[{label}] {expect.exception.__name__} does not name the received value "
                    f"{expect.received!r}: {message}"
                )
            return None
        if expect is not WORKS:
            self.failures.append(f"[{label}] expected {expect.exception.__name__}; nothing was raised")
        elif validate is not None:
            problem = validate(result)
            if problem:
                self.failures.append(f"[{label}] worked but {problem}")
        return result

    def finish(self, test):
        """Fail `test` with every failed case, or when fewer cases than the minimum ran."""
        test.assertGreaterEqual(
            self.count, self.minimum_cases, f"{self.entry_point}: only {self.count} cases ran"
        )
        if self.failures:
            test.fail(
                f"{self.entry_point}: {len(self.failures)} of {self.count} cases failed:\n"
                + "\n".join(self.failures[:40])
            )
