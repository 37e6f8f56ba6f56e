import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { checkPut } from "../../src/stores/check-input.js";
import {
  MemoryRunTable,
  newRow,
  rowBytes,
  type StoredRun,
} from "../../src/stores/memory-run-table.js";

// The memory table's budget (MEMORY_MAX_BYTES) reckons each row as rowBytes,
// its JSON's length. A write counts only the fields it changes
// (memory-run-table.ts, fieldsBytes); after any sequence of writes the
// size the table holds must still be exactly rowBytes of the row as it is.

const NOW = "2026-11-30T12:00:00.000000Z";
const STATUSES = ["pending", "running", "success", "error", "interrupted"] as const;

/** One write's changes: fields set, replaced, emptied or left undefined. */
const change = fc.record(
  {
    status: fc.constantFrom(...STATUSES),
    totalTokens: fc.nat(),
    lastAiMessage: fc.option(fc.string({ unit: "grapheme", maxLength: 40 })),
    modelName: fc.option(fc.string({ maxLength: 20 })),
    metadata: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 })),
    error: fc.option(fc.string({ unit: "grapheme", maxLength: 30 })),
    ownerWorkerId: fc.constantFrom(undefined, null, "worker-1"),
  },
  { requiredKeys: [] },
);

function row(id: string, status: (typeof STATUSES)[number]): StoredRun {
  const input = checkPut(id, { threadId: "t1", status, metadata: { a: 1 } });
  return newRow({ ...input, queued: status === "pending", holdsSlot: true }, NOW);
}

describe("memory table sizes", () => {
  it("after any writes, each row's reckoned size is exactly rowBytes of the row", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...STATUSES),
        fc.array(fc.tuple(fc.nat(2), change), { maxLength: 30 }),
        (first, writes) => {
          const table = new MemoryRunTable();
          const ids = ["r0", "r1", "r2"];
          for (const id of ids) table.insert(row(id, first));
          for (const [at, changes] of writes) {
            const stored = table.get(ids[at] as string) as StoredRun;
            const expected = rowBytes({ ...stored, ...(changes as Partial<StoredRun>) });
            expect(table.growth(stored, changes as Partial<StoredRun>)).toBe(
              expected - (table.sizeOf(stored.runId) as number),
            );
            table.write(stored, changes as Partial<StoredRun>);
          }
          for (const id of ids) {
            expect(table.sizeOf(id)).toBe(rowBytes(table.get(id) as StoredRun));
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});
