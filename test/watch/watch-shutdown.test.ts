import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createMetrics } from "../../src/metrics.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { PROTOCOLS, WatchReader, watchClient, watchServer } from "./watch-support.js";

// A graceful stop ends open WatchRuns streams at once with UNAVAILABLE (the
// SDKs resume elsewhere from their cursor) instead of holding the stop for
// the whole grace period: with a grace of two minutes, close() can only end
// within the test's bound if the streams end by themselves.

describe.each(PROTOCOLS)("WatchRuns at shutdown over %s", (protocol) => {
  it("open streams end with UNAVAILABLE and close() does not wait for them", {
    timeout: 60_000,
  }, async () => {
    const store = new MemoryRunStore();
    const metrics = createMetrics();
    const server = await watchServer(store, {
      shutdownGraceMs: 120_000,
      watchObserver: metrics.watch,
    });
    const { client, close } = watchClient(server.url, protocol);
    try {
      const readers = [new WatchReader(client), new WatchReader(client, { userId: "u" })];
      for (const reader of readers) await reader.next();
      await store.put("r1", { threadId: "t" });
      await readers[0]?.changes(1);
      const closing = server.close();
      for (const reader of readers) {
        const error = await reader.failure();
        expect(error.code).toBe(Code.Unavailable);
        expect(error.rawMessage).toBe(
          "server is shutting down; resume from the last cursor received",
        );
      }
      await closing;
      const aborted = (await metrics.registry.getMetricsAsJSON()).find(
        (m) => m.name === "runstore_watch_aborted_total",
      );
      expect(aborted?.values).toEqual([{ value: 2, labels: { reason: "shutdown" } }]);
    } finally {
      close();
    }
  });
});
