"""The behaviour contract of docs/contract.md against GrpcRunStore.

The cases are the data in test/contract/cases/*.json, which the TypeScript
suite runs too (case_runner.py makes one test method per case); the rules
whose inputs only Python can hand over are in python_inputs.py. A backend's
test module combines every mixin in RULES with ServerTestCase, and every
mixin in SCOPED_RULES with another (the scoped-token cases, on a server
that requires their tokens).
"""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()  # test discovery imports this package too

from .case_runner import case_rules  # noqa: E402
from .python_inputs import PythonInputs  # noqa: E402
from .scoped_cases import ScopedServer  # noqa: E402

#: The shared cases without tokens, then the Python-only rules.
RULES: tuple[type, ...] = (case_rules(), PythonInputs)

#: The shared cases with tokens (scoped-*.json), on a server requiring them.
SCOPED_RULES: tuple[type, ...] = (case_rules(with_tokens=True), ScopedServer)
