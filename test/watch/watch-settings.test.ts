import { Code } from "@connectrpc/connect";
import type { RunStore } from "@runstore/client";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, readConfig } from "../../src/config.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { DEFAULT_WATCH_SETTINGS } from "../../src/watch/watch-settings.js";
import { WatchReader, watchClient, watchServer } from "./watch-support.js";

// The WatchRuns settings (docs/operations.md, "Configuration" and "Live
// changes"), read and checked like every other setting; and a store that
// keeps no change log answers WatchRuns with UNIMPLEMENTED.

const cleanup: (() => unknown)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

describe("WatchRuns settings", () => {
  it("default, and read when given", () => {
    const defaults = readConfig({});
    expect(defaults.watch).toEqual(DEFAULT_WATCH_SETTINGS);
    expect(defaults.watch).toEqual({
      window: 10_000,
      logMax: 100_000,
      heartbeatMs: 15_000,
      pollMs: 100,
    });
    expect(defaults.limits.maxRunWatchers).toBe(1000);
    const given = readConfig({
      WATCH_WINDOW: "50",
      WATCH_LOG_MAX: "7",
      WATCH_HEARTBEAT_MS: "250",
      WATCH_POLL_MS: "20",
      MAX_RUN_WATCHERS: "3",
    });
    expect(given.watch).toEqual({ window: 50, logMax: 7, heartbeatMs: 250, pollMs: 20 });
    expect(given.limits.maxRunWatchers).toBe(3);
  });

  it.each([
    ["WATCH_WINDOW", "9", "an integer from 10 to 1000000"],
    ["WATCH_WINDOW", "1000001", "an integer from 10 to 1000000"],
    ["WATCH_LOG_MAX", "0", "an integer from 1 to 100000000"],
    ["WATCH_HEARTBEAT_MS", "5", "an integer from 10 to 3600000"],
    ["WATCH_POLL_MS", "1.5", "an integer from 10 to 60000"],
    ["MAX_RUN_WATCHERS", "0", "an integer from 1 to 1000000"],
    ["MAX_RUN_WATCHERS", "many", "an integer from 1 to 1000000"],
  ])("%s=%s is refused, naming it", (name, value, rule) => {
    expect(() => readConfig({ [name]: value })).toThrow(ConfigError);
    expect(() => readConfig({ [name]: value })).toThrow(
      `${name} must be ${rule}, got ${JSON.stringify(value)}`,
    );
  });
});

describe("WatchRuns on a store without a change log", () => {
  it("is UNIMPLEMENTED", async () => {
    const memory = new MemoryRunStore();
    // Every method of the store but changeFeed: a store that keeps no log.
    const store = new Proxy(memory, {
      get: (target, key) => (key === "changeFeed" ? undefined : Reflect.get(target, key, target)),
    }) as RunStore;
    const server = await watchServer(store);
    cleanup.push(() => server.close(0));
    const { client, close } = watchClient(server.url, "grpc");
    cleanup.push(close);
    const error = await new WatchReader(client).failure();
    expect([error.code, error.rawMessage]).toEqual([
      Code.Unimplemented,
      "WatchRuns needs a store that keeps a change log (the memory or MySQL store)",
    ]);
  });
});
