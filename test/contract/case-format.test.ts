import { describe, expect, it } from "vitest";
import { checkCaseFile } from "./case-runner.js";

// The loader refuses what the runners would misread in the watch steps
// (cases/README.md, "Watch steps"), naming the file, the case and the step.
// python/tests/test_case_format.py checks the same refusals of Python's loader.

const FILE = "test/contract/cases/example.json";

/** A file of one remote-only case with these steps (and case keys). */
function fileWith(steps: unknown[], caseKeys: Record<string, unknown> = {}) {
  return {
    spec: "example",
    remoteOnly: true,
    cases: [{ name: "c", steps, ...caseKeys }],
  };
}

const HEARTBEAT = { expectChanges: "w", changes: [] };

function refusal(document: unknown): string {
  try {
    checkCaseFile(document, FILE);
  } catch (error) {
    return (error as Error).message;
  }
  return "accepted";
}

describe("the case loader, watch steps", () => {
  it("accepts a watch case as cases/README.md writes one", () => {
    const steps = [
      { watch: "w", filter: { thread_id: "t1", cursor: "" } },
      { put: { run_id: "r1", thread_id: "t1" } },
      { expectChanges: "w", changes: [{ kind: "created", run: { $fields: { run_id: "r1" } } }] },
      { closeWatch: "w" },
      { restartServer: true },
      { replica: "b" },
      { resumeWatch: "w", error: "OUT_OF_RANGE cursor" },
    ];
    expect(refusal(fileWith(steps, { backends: ["mysql"], settings: { WATCH_WINDOW: 20 } }))).toBe(
      "accepted",
    );
  });

  it.each([
    [
      "an unknown key next to a watch step",
      fileWith([{ watch: "w", window: 5 }]),
      `${FILE}: case 1 "c", step 1: unknown key "window" (next to watch: filter, as, error, message, save)`,
    ],
    [
      "an unknown filter key",
      fileWith([{ watch: "w", filter: { thread: "t1" } }]),
      `${FILE}: case 1 "c", step 1: unknown filter key "thread"`,
    ],
    [
      "an unknown key of an expected change",
      fileWith([
        { watch: "w" },
        { expectChanges: "w", changes: [{ kind: "created", run: {}, seq: 1 }] },
      ]),
      `${FILE}: case 1 "c", step 2: change 1: unknown key "seq"`,
    ],
    [
      "a change kind the wire has not",
      fileWith([{ watch: "w" }, { expectChanges: "w", changes: [{ kind: "inserted", run: {} }] }]),
      `${FILE}: case 1 "c", step 2: change 1: "kind" must be one of created, updated, deleted`,
    ],
    [
      "a watch no earlier step opened",
      fileWith([{ watch: "w" }, { expectChanges: "v", changes: [] }]),
      `${FILE}: case 1 "c", step 2: "expectChanges" must name a watch opened by an earlier step`,
    ],
    [
      "a watch step inside a parallel",
      fileWith([{ parallel: [{ watch: "w" }] }]),
      `${FILE}: case 1 "c", step 1.1: watch steps run one at a time, not in a parallel`,
    ],
    [
      "changes and an error together",
      fileWith([{ watch: "w" }, { expectChanges: "w", changes: [], error: "ABORTED" }]),
      `${FILE}: case 1 "c", step 2: "changes" and "error" do not go together`,
    ],
    [
      "an unknown setting",
      fileWith([{ watch: "w" }, HEARTBEAT], { settings: { WATCH_WINDOWS: 20 } }),
      `${FILE}: case 1 "c": unknown setting "WATCH_WINDOWS"`,
    ],
    [
      "an unknown backend",
      fileWith([{ watch: "w" }, HEARTBEAT], { backends: ["postgres"] }),
      `${FILE}: case 1 "c": "backends" must be a non-empty list of memory, mysql`,
    ],
    [
      "a second replica on a backend two servers cannot share",
      fileWith([{ watch: "w" }, { replica: "b" }, HEARTBEAT]),
      `${FILE}: case 1 "c": a case with "replica" needs "backends": ["mysql"]`,
    ],
    [
      "watch steps without remoteOnly",
      { spec: "example", cases: [{ name: "c", steps: [{ watch: "w" }, HEARTBEAT] }] },
      `${FILE}: case 1 "c": a case with watch steps or "settings" needs "remoteOnly": true`,
    ],
  ])("refuses %s, naming the file, the case and the step", (_, document, message) => {
    expect(refusal(document)).toContain(message);
  });
});
