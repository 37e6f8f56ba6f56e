import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { setTimeout as pause } from "node:timers/promises";
import { parseTimestamp } from "@runstore/client/internal";
import { Counter, type Registry } from "prom-client";
import type { Logger } from "./logger.js";
import type { RetentionSettings } from "./retention-settings.js";

/**
 * A store that can delete old terminal runs in batches (both backends). A
 * sweep belongs to one replica at a time: claimSweep takes (or renews) a
 * lease on the sweep shared by every replica of one database, so two
 * replicas never sweep at once.
 */
export interface SweepsTerminalRuns {
  /**
   * true when `holder` holds the sweep lease for `leaseMs` from now: taken
   * when it is free or expired, renewed when `holder` holds it already.
   */
  claimSweep(holder: string, leaseMs: number): Promise<boolean>;
  /**
   * Deletes at most `limit` terminal runs (success, error, timeout,
   * interrupted) whose updated_at is before `cutoff`, never an active one;
   * answers how many.
   */
  sweepTerminal(cutoff: string, limit: number): Promise<number>;
}

/** true when `store` can be swept (both backends). */
export function sweepsTerminalRuns(store: object): store is SweepsTerminalRuns {
  const candidate = store as Partial<SweepsTerminalRuns>;
  return (
    typeof candidate.claimSweep === "function" && typeof candidate.sweepTerminal === "function"
  );
}

/** A store whose change log the sweeper prunes (MySQL; the memory log bounds itself by count). */
export interface PrunesChanges {
  /** Deletes at most `limit` changes recorded before `cutoff`, oldest first; answers how many. */
  pruneChanges(cutoff: string, limit: number): Promise<number>;
}

/** true when `store` keeps a change log the sweeper prunes. */
export function prunesChanges(store: object): store is PrunesChanges {
  return typeof (store as Partial<PrunesChanges>).pruneChanges === "function";
}

/** Why a sweep ended. */
export type SweepEnd =
  /** Another replica holds the sweep lease; this one deleted nothing. */
  | "held elsewhere"
  /** A batch came back short: nothing older is left. */
  | "done"
  /** close() was called: the server is stopping. */
  | "closed"
  /** The lease expired during the sweep and another replica took it; it goes on from here. */
  | "lease lost";

/** What deleting one kind of rows did during a sweep. */
export interface SweepTally {
  deleted: number;
  batches: number;
}

/** What one sweep did. */
export interface SweepReport extends SweepTally {
  /** false when another replica held the sweep. */
  swept: boolean;
  ended: SweepEnd;
  /** Terminal runs updated before this instant were deleted; null: runs are not swept (RETENTION_DAYS unset). */
  cutoff: string | null;
  /** The change log's share (CHANGE_LOG_HOURS), on a store that keeps one: changes recorded before `cutoff`. */
  changes?: SweepTally & { cutoff: string };
}

/**
 * How far the sweep lease outlives one interval. The holder renews the
 * lease at each tick, before it expires, so the replica that sweeps keeps
 * sweeping, and before each batch, so a sweep longer than the interval
 * keeps it too: the margin must cover one batch. A replica that dies
 * leaves the sweep to another one after at most this much past its
 * interval.
 */
export const SWEEP_LEASE_MARGIN_MS = 30_000;

/** The sweep lease a sweeper with `settings` takes: one interval, one pause and the margin. */
export function sweepLeaseMs(settings: Pick<RetentionSettings, "intervalMs" | "pauseMs">): number {
  return settings.intervalMs + settings.pauseMs + SWEEP_LEASE_MARGIN_MS;
}

/**
 * Deletes terminal runs older than RETENTION_DAYS (docs/operations.md,
 * "Retention"), then changes older than CHANGE_LOG_HOURS from a store's
 * change log (docs/mysql.md "Change log"), under one lease: every interval, the replica holding the sweep lease deletes
 * batches of at most `batchSize` runs with a pause between them (so the
 * database serves other calls between two batches), until a batch comes
 * back short. It renews the lease before each batch and stops when another
 * replica has taken it. One log line per sweep; runstore_runs_deleted_total
 * counts what it deleted.
 */
export class RetentionSweeper {
  /** Who holds the lease, as the lease table shows it: host, process, this sweeper. */
  readonly holder = `${hostname().slice(0, 200)}/${process.pid}/${randomUUID()}`;
  private readonly leaseMs: number;
  private readonly deletedTotal: Counter<"reason"> | null;
  private readonly closing = new AbortController();
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<SweepReport> | null = null;

  /** `store` prunes its change log when it can and `settings.changeLogHours` > 0. */
  constructor(
    private readonly store: SweepsTerminalRuns & Partial<PrunesChanges>,
    private readonly settings: RetentionSettings,
    private readonly logger: Logger,
    registry?: Registry,
  ) {
    this.leaseMs = sweepLeaseMs(settings);
    this.deletedTotal =
      registry === undefined
        ? null
        : new Counter({
            name: "runstore_runs_deleted_total",
            help: "Runs deleted by the server itself (reason: retention, the RETENTION_DAYS sweeper).",
            labelNames: ["reason"],
            registers: [registry],
          });
    // Scraped as 0 from the start, so rate() and alerts see the series before the first delete.
    this.deletedTotal?.inc({ reason: "retention" }, 0);
  }

  /** Sweeps now and then every interval, until close(). */
  start(): void {
    const tick = () => {
      if (this.running === null && !this.closing.signal.aborted) {
        void this.sweepOnce().catch(() => {}); // logged by sweep(); the next tick tries again
      }
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

  /** Stops the timer and waits for a sweep under way to stop after its batch (its pause is cut short). */
  async close(): Promise<void> {
    this.closing.abort();
    if (this.timer !== null) clearInterval(this.timer);
    await this.running?.catch(() => {});
  }

  private async sweep(): Promise<SweepReport> {
    const { days, changeLogHours } = this.settings;
    const report: SweepReport = {
      swept: false,
      ended: "held elsewhere",
      deleted: 0,
      batches: 0,
      cutoff: days === null ? null : ago(days * 86_400_000),
    };
    if (changeLogHours > 0 && prunesChanges(this.store)) {
      report.changes = { deleted: 0, batches: 0, cutoff: ago(changeLogHours * 3_600_000) };
    }
    const started = Date.now();
    try {
      if (!(await this.store.claimSweep(this.holder, this.leaseMs))) {
        this.logger.debug({ ...report }, "retention sweep skipped: another replica holds it");
        return report;
      }
      report.swept = true;
      report.ended = await this.deleteAll(report);
      this.logger.info({ ...report, ms: Date.now() - started }, "retention sweep");
      return report;
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      this.logger.warn(
        { ...report, ms: Date.now() - started, error: reason },
        "retention sweep failed; the next one starts over",
      );
      throw error;
    }
  }

  /** The old terminal runs, then the old changes, each as the report asks. */
  private async deleteAll(report: SweepReport): Promise<SweepEnd> {
    const { cutoff, changes } = report;
    if (cutoff !== null) {
      const ended = await this.deleteBatches(report, async (limit) => {
        const deleted = await this.store.sweepTerminal(cutoff, limit);
        this.deletedTotal?.inc({ reason: "retention" }, deleted);
        return deleted;
      });
      if (ended !== "done") return ended;
    }
    const prune = this.store.pruneChanges?.bind(this.store);
    if (changes === undefined || prune === undefined) return "done";
    return this.deleteBatches(changes, (limit) => prune(changes.cutoff, limit));
  }

  /** Batches of `remove` until one comes back short, each counted in `tally`. */
  private async deleteBatches(
    tally: SweepTally,
    remove: (limit: number) => Promise<number>,
  ): Promise<SweepEnd> {
    const { batchSize, pauseMs } = this.settings;
    for (;;) {
      const deleted = await remove(batchSize);
      tally.batches++;
      tally.deleted += deleted;
      if (deleted < batchSize) return "done";
      if (this.closing.signal.aborted || !(await this.pause(pauseMs))) return "closed";
      if (!(await this.store.claimSweep(this.holder, this.leaseMs))) return "lease lost";
    }
  }

  /**
   * Not synchronisation: the designed gap that lets other calls reach the
   * database between two batches. false when close() cut it short.
   */
  private async pause(ms: number): Promise<boolean> {
    if (ms === 0) return true;
    try {
      await pause(ms, undefined, { signal: this.closing.signal });
      return true;
    } catch {
      return false;
    }
  }
}

/** The fixed-width UTC instant `ms` before now. */
function ago(ms: number): string {
  return parseTimestamp(new Date(Date.now() - ms), "cutoff");
}

/**
 * Starts sweeping `store` and logs what it will do; null when there is
 * nothing to sweep on it: RETENTION_DAYS unset and no change log to prune
 * (the memory store's bounds itself), or (with a warning) a store that
 * cannot be swept (both backends can).
 */
export function startRetention(
  store: object,
  settings: RetentionSettings,
  logger: Logger,
  registry?: Registry,
): RetentionSweeper | null {
  if (!sweepsTerminalRuns(store)) {
    if (settings.days !== null) {
      logger.warn("RETENTION_DAYS is set but this store cannot delete old runs: nothing is swept");
    }
    return null;
  }
  const changeLogHours = prunesChanges(store) ? settings.changeLogHours : 0;
  if (settings.days === null && changeLogHours === 0) return null;
  const sweeper = new RetentionSweeper(store, { ...settings, changeLogHours }, logger, registry);
  const { days, intervalMs, batchSize, pauseMs } = settings;
  const what = [
    days === null ? "" : `terminal runs not updated for ${days} day(s)`,
    changeLogHours === 0 ? "" : `changes recorded more than ${changeLogHours} hour(s) ago`,
  ].filter(Boolean);
  logger.info(
    {
      days,
      changeLogHours,
      intervalS: intervalMs / 1000,
      batchSize,
      pauseMs,
      holder: sweeper.holder,
    },
    `retention: ${what.join(" and ")} are deleted, checked every ${intervalMs / 1000} s`,
  );
  sweeper.start();
  return sweeper;
}
