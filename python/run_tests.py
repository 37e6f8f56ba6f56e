"""Runs the Python suite (unittest discovery over python/tests) and ends with
one plain line, "python: N passed, N failed, N skipped, N ran on MySQL";
exits 1 on failure. `npm test` reads that line for its closing count.

    /usr/bin/python3 python/run_tests.py        # from anywhere
"""

from __future__ import annotations

import sys
import unittest
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _on_mysql(test: unittest.TestCase) -> bool:
    """True for a test of a class that holds a MySQL test database."""
    from tests.support.mysql import ScratchDatabase

    return isinstance(getattr(test, "database", None), ScratchDatabase)


class _CountingResult(unittest.TextTestResult):
    """Counts passes too (setUpClass errors are failures that ran no test),
    and the tests that ran on MySQL, passed or not."""

    passed = 0
    on_mysql = 0

    def addSuccess(self, test: unittest.TestCase) -> None:
        super().addSuccess(test)
        self.passed += 1
        self.on_mysql += _on_mysql(test)

    def addFailure(self, test: unittest.TestCase, err: Any) -> None:
        super().addFailure(test, err)
        self.on_mysql += _on_mysql(test)

    def addError(self, test: unittest.TestCase, err: Any) -> None:
        super().addError(test, err)
        self.on_mysql += isinstance(test, unittest.TestCase) and _on_mysql(test)


def main() -> int:
    suite = unittest.defaultTestLoader.discover(str(HERE / "tests"), top_level_dir=str(HERE))
    runner = unittest.TextTestRunner(resultclass=_CountingResult, verbosity=1)
    result = runner.run(suite)
    assert isinstance(result, _CountingResult)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    print(
        f"python: {result.passed} passed, {failed} failed, {len(result.skipped)} skipped,"
        f" {result.on_mysql} ran on MySQL"
    )
    return 0 if result.wasSuccessful() else 1


if __name__ == "__main__":
    sys.exit(main())
