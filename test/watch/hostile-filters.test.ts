import type { MessageInitShape } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
import type { pb } from "@runstore/client/internal";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { encodeCursor } from "../../src/watch/watch-cursor.js";
import { PROTOCOLS, WatchReader, watchClient, watchServer } from "./watch-support.js";

// WatchRuns under hostile filters, like test/faults/hostile-input.test.ts
// for the unary RPCs: any enum number, ids of every script and length,
// cursors damaged, forged, of another log, past the head. The stream either
// starts (its first message a heartbeat) or is refused before it with
// INVALID_ARGUMENT naming the first bad field (OUT_OF_RANGE for another
// log's cursor). FC_SEED=<n> replays a reported run.

const FC_SEED = process.env.FC_SEED === undefined ? undefined : Number(process.env.FC_SEED);
const runs = (numRuns: number) =>
  FC_SEED === undefined ? { numRuns } : { numRuns, seed: FC_SEED };

type Request = MessageInitShape<typeof pb.WatchRunsRequestSchema>;

const store = new MemoryRunStore({ watchLogMax: 5 });
let server: RunningServer;
let identity: string;
const otherIdentity = "00000000-0000-4000-8000-000000000000";
/** Changes written before the fuzzing: the log keeps 4..8. */
const HEAD = 8;

beforeAll(async () => {
  // Read first: a log nobody has read keeps nothing (memory-change-feed.ts).
  identity = await store.changeFeed().identity();
  for (let i = 0; i < HEAD; i++) await store.put(`r${i}`, { threadId: "t", userId: "u" });
  server = await watchServer(store);
});
afterAll(async () => {
  await server.close(0);
});

const id = fc.oneof(
  fc.string({ unit: "binary", minLength: 0, maxLength: 70 }),
  fc.string({ unit: "grapheme", minLength: 60, maxLength: 70 }),
  fc.constantFrom("u", "t", "' OR 1=1 --", "🦀".repeat(64), "🦀".repeat(65)),
);
const json = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const cursor = fc.oneof(
  fc.constant(""),
  fc.string({ maxLength: 40 }),
  fc.base64String({ maxLength: 40 }),
  fc.jsonValue().map(json),
  fc.bigInt({ min: 0n, max: 20n }).map((s) => encodeCursor(identity, s)),
  fc.bigInt({ min: 0n, max: 20n }).map((s) => encodeCursor(otherIdentity, s)),
  fc.record({ v: fc.integer({ min: 0, max: 2 }), id: fc.string(), s: fc.string() }).map(json),
);
const request: fc.Arbitrary<Request> = fc.record(
  {
    userId: id,
    threadId: id,
    statuses: fc.array(fc.integer({ min: -3, max: 9 }), { maxLength: 4 }),
    activeOnly: fc.boolean(),
    operationKinds: fc.array(fc.integer({ min: -3, max: 7 }), { maxLength: 4 }),
    cursor,
  },
  { requiredKeys: ["statuses", "operationKinds", "activeOnly", "cursor"] },
);

/** What the server must answer: null (the stream starts) or the code and the field named. */
function expected(req: Request): { code: Code; field: string } | null {
  const idBad = (value: string | undefined) =>
    value !== undefined && ([...value].length < 1 || [...value].length > 64);
  if (idBad(req.userId)) return { code: Code.InvalidArgument, field: "user_id" };
  if (idBad(req.threadId)) return { code: Code.InvalidArgument, field: "thread_id" };
  const badStatus = (req.statuses ?? []).findIndex((s) => !(s >= 1 && s <= 6));
  if (badStatus >= 0) return { code: Code.InvalidArgument, field: `statuses[${badStatus}]` };
  const badKind = (req.operationKinds ?? []).findIndex((k) => !(k >= 1 && k <= 4));
  if (badKind >= 0) return { code: Code.InvalidArgument, field: `operation_kinds[${badKind}]` };
  return cursorVerdict(req.cursor ?? "");
}

function cursorVerdict(text: string): { code: Code; field: string } | null {
  if (text === "") return null;
  for (let s = 0n; s <= 20n; s++) {
    if (text === encodeCursor(otherIdentity, s)) return { code: Code.OutOfRange, field: "cursor" };
    if (text !== encodeCursor(identity, s)) continue;
    if (s > BigInt(HEAD)) return { code: Code.InvalidArgument, field: "cursor" };
    return s < 3n ? { code: Code.OutOfRange, field: "cursor" } : null;
  }
  return { code: Code.InvalidArgument, field: "cursor" };
}

describe.each(PROTOCOLS)("WatchRuns hostile filters over %s", (protocol) => {
  it("starts, or refuses naming the first bad field", { timeout: 120_000 }, async () => {
    const { client, close } = watchClient(server.url, protocol);
    try {
      await fc.assert(
        fc.asyncProperty(request, async (req) => {
          const want = expected(req);
          const reader = new WatchReader(client, req);
          try {
            if (want === null) {
              expect((await reader.next()).change).toBeUndefined();
              return;
            }
            const error = await reader.failure();
            expect({ code: error.code }).toEqual({ code: want.code });
            expect(error.rawMessage.startsWith(`${want.field} `)).toBe(true);
          } finally {
            reader.cancel();
          }
        }),
        runs(200),
      );
    } finally {
      close();
    }
    // Nothing was written by any of it.
    expect(await store.changeFeed().head()).toBe(BigInt(HEAD));
  });
});
