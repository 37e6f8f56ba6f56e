"""The case loader refuses what the runners would misread in the watch steps
(test/contract/cases/README.md, "Watch steps"), naming the file, the case
and the step; test/contract/case-format.test.ts checks the same refusals of
the TypeScript loader."""

from __future__ import annotations

import unittest
from typing import Any

from tests.contract.case_runner import _check_case_file

FILE = "test/contract/cases/example.json"
HEARTBEAT = {"expectChanges": "w", "changes": []}


def file_with(steps: list[Any], **case_keys: Any) -> dict[str, Any]:
    """A file of one remote-only case with these steps (and case keys)."""
    case = {"name": "c", "steps": steps, **case_keys}
    return {"spec": "example", "remoteOnly": True, "cases": [case]}


def refusal(document: Any) -> str:
    try:
        _check_case_file(document, FILE)
    except ValueError as error:
        return str(error)
    return "accepted"


CASE = f'{FILE}: case 1 "c"'

REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    (
        "an unknown key next to a watch step",
        file_with([{"watch": "w", "window": 5}]),
        f'{CASE}, step 1: unknown key "window" (next to watch: filter, as, error, message, save)',
    ),
    (
        "an unknown filter key",
        file_with([{"watch": "w", "filter": {"thread": "t1"}}]),
        f'{CASE}, step 1: unknown filter key "thread"',
    ),
    (
        "an unknown key of an expected change",
        file_with(
            [
                {"watch": "w"},
                {"expectChanges": "w", "changes": [{"kind": "created", "run": {}, "seq": 1}]},
            ]
        ),
        f'{CASE}, step 2: change 1: unknown key "seq"',
    ),
    (
        "a change kind the wire has not",
        file_with(
            [{"watch": "w"}, {"expectChanges": "w", "changes": [{"kind": "inserted", "run": {}}]}]
        ),
        f'{CASE}, step 2: change 1: "kind" must be one of created, updated, deleted',
    ),
    (
        "a watch no earlier step opened",
        file_with([{"watch": "w"}, {"expectChanges": "v", "changes": []}]),
        f'{CASE}, step 2: "expectChanges" must name a watch opened by an earlier step',
    ),
    (
        "a watch step inside a parallel",
        file_with([{"parallel": [{"watch": "w"}]}]),
        f"{CASE}, step 1.1: watch steps run one at a time, not in a parallel",
    ),
    (
        "changes and an error together",
        file_with([{"watch": "w"}, {"expectChanges": "w", "changes": [], "error": "ABORTED"}]),
        f'{CASE}, step 2: "changes" and "error" do not go together',
    ),
    (
        "an unknown setting",
        file_with([{"watch": "w"}, HEARTBEAT], settings={"WATCH_WINDOWS": 20}),
        f'{CASE}: unknown setting "WATCH_WINDOWS"',
    ),
    (
        "an unknown backend",
        file_with([{"watch": "w"}, HEARTBEAT], backends=["postgres"]),
        f'{CASE}: "backends" must be a non-empty list of memory, mysql',
    ),
    (
        "a second replica on a backend two servers cannot share",
        file_with([{"watch": "w"}, {"replica": "b"}, HEARTBEAT]),
        f'{CASE}: a case with "replica" needs "backends": ["mysql"]',
    ),
    (
        "watch steps without remoteOnly",
        {"spec": "example", "cases": [{"name": "c", "steps": [{"watch": "w"}, HEARTBEAT]}]},
        f'{CASE}: a case with watch steps or "settings" needs "remoteOnly": true',
    ),
]


class CaseFormatTest(unittest.TestCase):
    def test_accepts_a_watch_case_as_the_readme_writes_one(self) -> None:
        steps = [
            {"watch": "w", "filter": {"thread_id": "t1", "cursor": ""}},
            {"put": {"run_id": "r1", "thread_id": "t1"}},
            {
                "expectChanges": "w",
                "changes": [{"kind": "created", "run": {"$fields": {"run_id": "r1"}}}],
            },
            {"closeWatch": "w"},
            {"restartServer": True},
            {"replica": "b"},
            {"resumeWatch": "w", "error": "OUT_OF_RANGE cursor"},
        ]
        document = file_with(steps, backends=["mysql"], settings={"WATCH_WINDOW": 20})
        self.assertEqual(refusal(document), "accepted")

    def test_refuses_what_the_runner_would_misread(self) -> None:
        for what, document, message in REFUSALS:
            with self.subTest(what):
                self.assertIn(message, refusal(document))
