import { describe, expect, it } from "vitest";
import { ConfigError, readConfig } from "../../src/config.js";

// The RETENTION_* settings as config.ts reads them (docs/operations.md, "Retention").

function refusal(env: NodeJS.ProcessEnv): string {
  try {
    readConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error("not refused");
}

describe("RETENTION_* settings", () => {
  it("off when RETENTION_DAYS is unset and CHANGE_LOG_HOURS is 0", () => {
    expect(readConfig({ CHANGE_LOG_HOURS: "0" }).retention).toBeNull();
    expect(readConfig({ RETENTION_DAYS: " ", CHANGE_LOG_HOURS: "0" }).retention).toBeNull();
  });

  it("on by default for the change log alone (CHANGE_LOG_HOURS 24), runs kept", () => {
    expect(readConfig({}).retention).toEqual({
      days: null,
      changeLogHours: 24,
      intervalMs: 600_000,
      batchSize: 500,
      pauseMs: 100,
    });
    expect(readConfig({ CHANGE_LOG_HOURS: "1" }).retention).toMatchObject({
      days: null,
      changeLogHours: 1,
    });
  });

  it("RETENTION_DAYS turns the sweeper on with the defaults, each overridable", () => {
    expect(readConfig({ RETENTION_DAYS: "30" }).retention).toEqual({
      days: 30,
      changeLogHours: 24,
      intervalMs: 600_000,
      batchSize: 500,
      pauseMs: 100,
    });
    expect(
      readConfig({
        RETENTION_DAYS: "1",
        RETENTION_INTERVAL_S: "60",
        RETENTION_BATCH_SIZE: "10000",
        RETENTION_PAUSE_MS: "0",
      }).retention,
    ).toEqual({ days: 1, changeLogHours: 24, intervalMs: 60_000, batchSize: 10_000, pauseMs: 0 });
  });

  it("refuses a value out of range naming the setting, even while retention is off", () => {
    expect(refusal({ RETENTION_DAYS: "0" })).toBe(
      'RETENTION_DAYS must be an integer from 1 to 36500, got "0"',
    );
    expect(refusal({ RETENTION_DAYS: "7 days" })).toBe(
      'RETENTION_DAYS must be an integer from 1 to 36500, got "7 days"',
    );
    expect(refusal({ RETENTION_INTERVAL_S: "86401" })).toBe(
      'RETENTION_INTERVAL_S must be an integer from 1 to 86400, got "86401"',
    );
    expect(refusal({ RETENTION_DAYS: "1", RETENTION_BATCH_SIZE: "0" })).toBe(
      'RETENTION_BATCH_SIZE must be an integer from 1 to 10000, got "0"',
    );
    expect(refusal({ RETENTION_PAUSE_MS: "-1" })).toBe(
      'RETENTION_PAUSE_MS must be an integer from 0 to 60000, got "-1"',
    );
    expect(refusal({ CHANGE_LOG_HOURS: "8761" })).toBe(
      'CHANGE_LOG_HOURS must be an integer from 0 to 8760, got "8761"',
    );
  });
});
