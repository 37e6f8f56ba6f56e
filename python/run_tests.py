"""Runs the Python suite (unittest discovery over python/tests) and ends with
one plain line, "python: N passed, N failed, N skipped"; exits 1 on failure.

    /usr/bin/python3 python/run_tests.py        # from anywhere
"""

from __future__ import annotations

import sys
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent


class _CountingResult(unittest.TextTestResult):
    """Counts passes too: setUpClass errors are failures that ran no test."""

    passed = 0

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self.passed += 1


def main() -> int:
    suite = unittest.defaultTestLoader.discover(str(HERE / "tests"), top_level_dir=str(HERE))
    runner = unittest.TextTestRunner(resultclass=_CountingResult, verbosity=1)
    result = runner.run(suite)
    assert isinstance(result, _CountingResult)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(f"python: {result.passed} passed, {failed} failed, {len(result.skipped)} skipped")
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
