import { Code } from "@connectrpc/connect";
import { afterAll, describe, expect, it } from "vitest";
import type { TokenGrant } from "../../src/auth/principal.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { PROTOCOLS, WatchReader, watchClient, watchServer } from "./watch-support.js";

// WatchRuns and tokens (docs/security.md, "Scoped tokens"): a read, a write
// and an admin token may all watch (WatchRuns has no side effects); a
// user-bound token watches only its users' rows: another user_id is
// PERMISSION_DENIED, and without user_id the stream carries its users' rows
// only. This is WatchRuns' read × write × admin coverage
// (test/contract/scoped-coverage.test.ts covers the contract cases' methods).

const cleanup: (() => unknown)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

const ADMIN = "admin-token-0123456789";
const READER = "read-token-0123456789ab";
const WRITER = "write-token-0123456789a";
const BOTH = "read-both-token-0123456";
const TOKENS: (string | TokenGrant)[] = [
  ADMIN,
  { token: READER, principal: { role: "read", users: new Set(["u1"]) } },
  { token: WRITER, principal: { role: "write", users: new Set(["u2"]) } },
  { token: BOTH, principal: { role: "read", users: new Set(["u1", "u2"]) } },
];

/** The script: u1's r1 (1, 2), u2's r2 (3), an unowned r3 (4), u3's r4 (5). */
async function script(store: MemoryRunStore): Promise<void> {
  await store.put("r1", { threadId: "t", userId: "u1" });
  await store.updateStatus("r1", "running");
  await store.put("r2", { threadId: "t", userId: "u2" });
  await store.put("r3", { threadId: "t" });
  await store.put("r4", { threadId: "t", userId: "u3" });
}

describe.each(PROTOCOLS)("WatchRuns with scoped tokens over %s", (protocol) => {
  it("read, write and admin tokens watch; bound ones see only their users' rows", async () => {
    const store = new MemoryRunStore();
    const server = await watchServer(store, { tokens: TOKENS, watch: { heartbeatMs: 50 } });
    cleanup.push(() => server.close(0));
    const reader = (token: string, request = {}) => {
      const { client, close } = watchClient(server.url, protocol, token);
      cleanup.push(close);
      const watch = new WatchReader(client, request);
      cleanup.push(() => watch.cancel());
      return watch;
    };
    const watches = {
      read: reader(READER),
      readNamed: reader(READER, { userId: "u1" }),
      write: reader(WRITER),
      both: reader(BOTH),
      admin: reader(ADMIN),
    };
    for (const watch of Object.values(watches)) expect((await watch.next()).change).toBeUndefined();
    await script(store);
    const ids = async (watch: WatchReader) =>
      (await watch.changesThrough(5)).map((c) => [c.sequence, c.runId]);
    expect(await ids(watches.read)).toEqual([
      [1, "r1"],
      [2, "r1"],
    ]);
    expect(await ids(watches.readNamed)).toEqual([
      [1, "r1"],
      [2, "r1"],
    ]);
    expect(await ids(watches.write)).toEqual([[3, "r2"]]);
    expect(await ids(watches.both)).toEqual([
      [1, "r1"],
      [2, "r1"],
      [3, "r2"],
    ]);
    expect(await ids(watches.admin)).toEqual([
      [1, "r1"],
      [2, "r1"],
      [3, "r2"],
      [4, "r3"],
      [5, "r4"],
    ]);
  });

  it("another user's user_id is PERMISSION_DENIED naming user_id; no token is UNAUTHENTICATED", async () => {
    const server = await watchServer(new MemoryRunStore(), { tokens: TOKENS });
    cleanup.push(() => server.close(0));
    for (const token of [READER, WRITER]) {
      const { client, close } = watchClient(server.url, protocol, token);
      cleanup.push(close);
      const error = await new WatchReader(client, { userId: "u3" }).failure();
      expect(error.code).toBe(Code.PermissionDenied);
      expect(error.rawMessage).toBe("user_id is not one of this token's users");
    }
    const { client, close } = watchClient(server.url, protocol);
    cleanup.push(close);
    expect((await new WatchReader(client).failure()).code).toBe(Code.Unauthenticated);
  });
});
