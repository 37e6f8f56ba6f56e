import { afterAll, describe, expect, it } from "vitest";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { CASES, script } from "./filter-cases.js";
import { PROTOCOLS, WatchReader, watchClient, watchServer } from "./watch-support.js";

// WatchRuns' filters (docs/contract.md, "Live changes"): a change is sent
// when the row matches after it, or matched before it (left_filter). One
// script of writes, a watcher per filter, each with its exact list.

const cleanup: (() => unknown)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

describe.each(PROTOCOLS)("WatchRuns filters over %s", (protocol) => {
  it("every filter gets exactly its changes, left_filter on the ones that leave it", async () => {
    const store = new MemoryRunStore();
    const server = await watchServer(store, { watch: { heartbeatMs: 50 } });
    cleanup.push(() => server.close(0));
    const { client, close } = watchClient(server.url, protocol);
    cleanup.push(close);
    const readers = CASES.map(([, request]) => new WatchReader(client, request));
    for (const reader of readers) cleanup.push(() => reader.cancel());
    for (const reader of readers) expect((await reader.next()).change).toBeUndefined();
    await script(store);
    // The last change is 9: each reader reads until its cursor reaches it (the
    // r5 change, or a heartbeat past it for a filter r5 is not in).
    for (const [index, [name, , expected]] of CASES.entries()) {
      const got = await (readers[index] as WatchReader).changesThrough(9);
      expect({ name, got }).toEqual({ name, got: expected });
    }
  });
});
