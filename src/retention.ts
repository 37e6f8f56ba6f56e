import { randomUUID } from "node:crypto";
import { setTimeout as pause } from "node:timers/promises";
import { parseTimestamp } from "@runstore/client/internal";
import { Counter, type Registry } from "prom-client";
import type { Logger } from "./logger.js";
import type { RetentionSettings } from "./retention-settings.js";

/**
 * A store that can delete old terminal runs in batches (both backends). A
 * sweep belongs to one replica at a time: claimSweep takes (or renews) a
 * lease on the sweep shared by every replica of one database, so two
 * replicas never delete the same rows at once.
 */
export interface SweepsTerminalRuns {
  /** true when `holder` holds the sweep lease for `leaseMs` from now. */
  claimSweep(holder: string, leaseMs: number): Promise<boolean>;
  /** Deletes at most `limit` terminal runs whose updated_at is before `cutoff`; answers how many. */
  sweepTerminal(cutoff: string, limit: number): Promise<number>;
}

export function sweepsTerminalRuns(store: object): store is SweepsTerminalRuns {
  const candidate = store as Partial<SweepsTerminalRuns>;
  return (
    typeof candidate.claimSweep === "function" && typeof candidate.sweepTerminal === "function"
  );
}

/** What one sweep did. */
export interface SweepReport {
  /** false when another replica holds the sweep. */
  swept: boolean;
  deleted: number;
  batches: number;
  cutoff: string;
}

/**
 * Deletes terminal runs older than RETENTION_DAYS (docs/operations.md,
 * "Retention"): every interval, the replica holding the sweep lease deletes
 * batches of at most `batchSize` runs with a pause between them (so the
 * database serves other calls between two batches), until a batch comes
 * back short. One log line per sweep; runstore_runs_deleted_total counts.
 */
export class RetentionSweeper {
  private readonly holder = randomUUID();
  private readonly deletedTotal: Counter<"reason"> | null;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<SweepReport> | null = null;
  private closed = false;

  constructor(
    private readonly store: SweepsTerminalRuns,
    private readonly settings: RetentionSettings,
    private readonly logger: Logger,
    registry?: Registry,
  ) {
    this.deletedTotal =
      registry === undefined
        ? null
        : new Counter({
            name: "runstore_runs_deleted_total",
            help: "Runs deleted by the server itself (reason: retention).",
            labelNames: ["reason"],
            registers: [registry],
          });
  }

  /** Sweeps now and then every interval, until close(). */
  start(): void {
    const tick = () => {
      if (this.running === null) void this.sweepOnce().catch(() => {});
    };
    tick();
    this.timer = setInterval(tick, this.settings.intervalMs);
    this.timer.unref();
  }

  /** One sweep; a sweep already under way is joined, not doubled. */
  sweepOnce(): Promise<SweepReport> {
    this.running ??= this.sweep().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** Stops the timer and waits for a sweep under way to stop after its batch. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    await this.running?.catch(() => {});
  }

  private async sweep(): Promise<SweepReport> {
    const cutoff = parseTimestamp(new Date(Date.now() - this.settings.days * 86_400_000), "cutoff");
    const report: SweepReport = { swept: false, deleted: 0, batches: 0, cutoff };
    const started = Date.now();
    try {
      if (!(await this.store.claimSweep(this.holder, this.settings.intervalMs))) return report;
      report.swept = true;
      await this.deleteBatches(report);
      this.logger.info({ ...report, ms: Date.now() - started }, "retention sweep");
      return report;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.logger.warn(
        { ...report, error: reason },
        "retention sweep stopped; the next one goes on",
      );
      throw error;
    }
  }

  private async deleteBatches(report: SweepReport): Promise<void> {
    const { batchSize, pauseMs } = this.settings;
    for (;;) {
      const deleted = await this.store.sweepTerminal(report.cutoff, batchSize);
      report.batches++;
      report.deleted += deleted;
      this.deletedTotal?.inc({ reason: "retention" }, deleted);
      if (deleted < batchSize || this.closed) return;
      // Not synchronisation: the designed gap that lets other calls reach the database.
      if (pauseMs > 0) await pause(pauseMs);
    }
  }
}
