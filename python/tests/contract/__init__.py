"""The behaviour contract of docs/contract.md, written once against GrpcRunStore.

The same 62 cases as the TypeScript suite (test/contract/run-store-contract.ts),
in Python terms, one mixin per docs/contract.md section. A backend's test module
combines every mixin in RULES with ServerTestCase; each test method's
docstring is the rule, worded as in the TypeScript suite.
"""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()  # test discovery imports this package too

from .aggregate_rules import AggregateRules  # noqa: E402
from .error_rules import ErrorRules  # noqa: E402
from .progress_rules import ProgressRules  # noqa: E402
from .put_rules import PutRules  # noqa: E402
from .read_rules import ReadRules  # noqa: E402
from .recovery_rules import RecoveryRules  # noqa: E402
from .timestamp_rules import TimestampRules  # noqa: E402
from .update_rules import UpdateRules  # noqa: E402

#: Every section's rules, in docs/contract.md order.
RULES: tuple[type, ...] = (
    PutRules,
    ReadRules,
    UpdateRules,
    ProgressRules,
    RecoveryRules,
    AggregateRules,
    TimestampRules,
    ErrorRules,
)
