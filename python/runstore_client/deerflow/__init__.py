"""DeerFlowRunStore: a drop-in for DeerFlow's current RunStore (2026-08-22,
f1f4af99b), over the RunStore gRPC service.

    from runstore_client.deerflow import DeerFlowRunStore

    store = DeerFlowRunStore("runstore:50051", token="…", timeout=10)
    run_manager = RunManager(store=store, ...)

GrpcRunStore answers in wire form (part 1's seed interface and part 2 as
dicts); this class answers in DeerFlow's own shapes and types, so its
RunManager works unchanged across workers. See docs/python.md.
"""

from __future__ import annotations

from .rows import deerflow_row
from .store import DeerFlowRunStore
from .types import LeaseRenewal, RunIdempotencyConflict, StatusFinalization

__all__ = [
    "DeerFlowRunStore",
    "LeaseRenewal",
    "RunIdempotencyConflict",
    "StatusFinalization",
    "deerflow_row",
]
