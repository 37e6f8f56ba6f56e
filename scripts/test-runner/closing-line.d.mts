// Types for closing-line.mjs, which stays plain JavaScript: `npm test` runs it
// before node_modules exists.

/** What one suite counted. */
export interface Counts {
  passed: number;
  failed: number;
  skipped: number;
  /** Tests that ran on MySQL (TypeScript: in files that opened a test database). */
  onMysql: number;
  /** TypeScript only: files that opened a MySQL test database. */
  mysqlFiles?: number;
}

/** How a suite ended; `counts` is absent when it wrote none. */
export interface SuiteResult {
  ok: boolean;
  counts?: Counts;
  problem: string | null;
}

export function closingLine(
  results: {
    typecheck: { ok: boolean; problem: string | null } | null;
    vitest: SuiteResult | null;
    /** The test/galera files on a local Galera cluster (vitest.galera.config.ts). */
    galera: SuiteResult | null;
    python: SuiteResult | null;
    mysql: string | null;
  },
  options: { skip: string[] },
): { line: string; ok: boolean };
