import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, readConfig } from "../../src/config.js";
import { openStore, StartupError } from "../../src/open-store.js";
import {
  judgeDurability,
  readDatabaseSettings,
  type ServerSettings,
} from "../../src/stores/mysql-durability.js";
import { createTestDatabase } from "../support/mysql.js";

// Red team, issue 14: "Durability settings unchecked". Start-up reads the
// database's durability settings and refuses a server that would lose
// acknowledged commits in a crash, unless ALLOW_UNSAFE_DURABILITY. The test
// server's global settings are shared and not ours to change, so the
// judgement is a pure function tested on every value, the reading is tested
// against the real server, and the refusal path runs openStore on the real
// database with the settings handed in by the test.

const SAFE: ServerSettings = {
  innodbFlushLogAtTrxCommit: 1,
  logBin: false,
  syncBinlog: 0,
  maxAllowedPacket: 16 * 1024 * 1024,
};

describe("judgeDurability", () => {
  it("accepts innodb_flush_log_at_trx_commit = 1, with or without a synced binary log", () => {
    expect(judgeDurability(SAFE)).toEqual({ unsafe: [], warnings: [] });
    expect(judgeDurability({ ...SAFE, logBin: true, syncBinlog: 1 })).toEqual({
      unsafe: [],
      warnings: [],
    });
  });

  it("calls 0 and 2 unsafe, saying what a crash loses", () => {
    expect(judgeDurability({ ...SAFE, innodbFlushLogAtTrxCommit: 0 }).unsafe).toEqual([
      "innodb_flush_log_at_trx_commit is 0: the redo log is written and flushed about once a second " +
        "(a crash of the database server loses the last second), so acknowledged writes may be lost; set it to 1",
    ]);
    expect(judgeDurability({ ...SAFE, innodbFlushLogAtTrxCommit: 2 }).unsafe).toEqual([
      "innodb_flush_log_at_trx_commit is 2: the redo log is written at each commit but flushed to disk " +
        "about once a second (an OS crash or power loss loses the last second), so acknowledged writes may be lost; set it to 1",
    ]);
  });

  it("calls a value it cannot read unsafe too", () => {
    expect(judgeDurability({ ...SAFE, innodbFlushLogAtTrxCommit: Number.NaN }).unsafe).toEqual([
      "innodb_flush_log_at_trx_commit is unknown: the redo log is not flushed at each commit, so acknowledged writes may be lost; set it to 1",
    ]);
  });

  it("warns of an unsynced binary log only when the binary log is on", () => {
    expect(judgeDurability({ ...SAFE, logBin: true, syncBinlog: 0 })).toEqual({
      unsafe: [],
      warnings: [
        "sync_binlog is 0 with the binary log on: after a crash, replicas and point-in-time recovery may miss acknowledged writes; set it to 1",
      ],
    });
    expect(judgeDurability({ ...SAFE, logBin: false, syncBinlog: 0 }).warnings).toEqual([]);
  });
});

describe("ALLOW_UNSAFE_DURABILITY", () => {
  it("is false unless set, and a value that is not a boolean is refused by name", () => {
    const url = "mysql://root@127.0.0.1:3306/runstore";
    expect(readConfig({ DATABASE_URL: url }).allowUnsafeDurability).toBe(false);
    expect(
      readConfig({ DATABASE_URL: url, ALLOW_UNSAFE_DURABILITY: "1" }).allowUnsafeDurability,
    ).toBe(true);
    expect(() => readConfig({ DATABASE_URL: url, ALLOW_UNSAFE_DURABILITY: "yes" })).toThrow(
      new ConfigError('ALLOW_UNSAFE_DURABILITY must be true or false, got "yes"'),
    );
  });
});

const db = await createTestDatabase("durability");

describe("start-up checks the database's durability", () => {
  if (db === null) {
    it.todo("not run: no MySQL server reachable (see the warning above)");
    return;
  }
  afterAll(() => db.drop());
  const unsafe = async (): Promise<ServerSettings> => ({ ...SAFE, innodbFlushLogAtTrxCommit: 0 });

  it("reads the real server's settings", async () => {
    const settings = await readDatabaseSettings({ url: db.url });
    console.log(`REPORT durability: the test server's settings ${JSON.stringify(settings)}`);
    expect(Number.isInteger(settings.innodbFlushLogAtTrxCommit)).toBe(true);
    expect(Number.isInteger(settings.syncBinlog)).toBe(true);
    expect(typeof settings.logBin).toBe("boolean");
    expect(settings.maxAllowedPacket).toBeGreaterThanOrEqual(1024);
  });

  it("refuses a database that would lose acknowledged commits, naming the setting and the override", async () => {
    const config = readConfig({ DATABASE_URL: db.url, DB_CONNECT_ATTEMPTS: "1" });
    const logged: string[] = [];
    const refusal = await openStore(config, (line) => logged.push(line), unsafe).then(
      () => null,
      (error: unknown) => error,
    );
    expect(refusal).toBeInstanceOf(StartupError);
    expect((refusal as StartupError).message).toBe(
      `refusing the database at ${db.url}: ${judgeDurability({ ...SAFE, innodbFlushLogAtTrxCommit: 0 }).unsafe[0]} ` +
        "(or set ALLOW_UNSAFE_DURABILITY=true to start anyway)",
    );
    expect(logged).toEqual([]);
  });

  it("with ALLOW_UNSAFE_DURABILITY=true, starts and warns", async () => {
    const config = readConfig({
      DATABASE_URL: db.url,
      DB_CONNECT_ATTEMPTS: "1",
      ALLOW_UNSAFE_DURABILITY: "true",
    });
    const logged: string[] = [];
    const opened = await openStore(config, (line) => logged.push(line), unsafe);
    try {
      await opened.store.put("r1", { threadId: "t1" });
      expect((await opened.store.get("r1"))?.threadId).toBe("t1");
    } finally {
      await opened.close();
    }
    expect(logged).toEqual([
      `database at ${db.url}: ${judgeDurability({ ...SAFE, innodbFlushLogAtTrxCommit: 0 }).unsafe[0]} ` +
        "(starting anyway: ALLOW_UNSAFE_DURABILITY=true)",
    ]);
  });

  it("starts on the real server's own settings when they are safe", async () => {
    const settings = await readDatabaseSettings({ url: db.url });
    expect(judgeDurability(settings).unsafe).toEqual([]);
    const opened = await openStore(readConfig({ DATABASE_URL: db.url, DB_CONNECT_ATTEMPTS: "1" }));
    await opened.close();
  });
});
