import type { RunStore } from "@runstore/client";
import { type Config, redactUrl } from "./config.js";
import { MemoryRunStore } from "./stores/memory-run-store.js";
import { mapMysqlError } from "./stores/mysql-errors.js";
import { migrate } from "./stores/mysql-migrations.js";
import { MysqlRunStore } from "./stores/mysql-run-store.js";

/** The store the configuration asks for, ready to serve, and how to release it. */
export interface OpenedStore {
  store: RunStore;
  /** One line for the start-up log. */
  description: string;
  close(): Promise<void>;
}

/** The database could not be used at start-up; main.ts prints the message and exits. */
export class StartupError extends Error {
  override name = "StartupError";
}

/**
 * Opens the configured store. For MySQL: applies pending migrations, retrying
 * while the database is unreachable (bounded by DB_CONNECT_ATTEMPTS, 1 s
 * apart and doubling), and fails at once on errors a retry cannot fix
 * (access denied, bad database name).
 */
export async function openStore(
  config: Config,
  log: (line: string) => void = () => {},
): Promise<OpenedStore> {
  if (config.database === null) {
    return {
      store: new MemoryRunStore(),
      description:
        "no database configured; using the in-memory store (data will not survive a restart)",
      close: async () => {},
    };
  }
  const where = redactUrl(config.database.url);
  let delayMs = 1000;
  for (let attempt = 1; ; attempt++) {
    try {
      const applied = await migrate(config.database);
      const store = MysqlRunStore.open(config.database);
      return {
        store,
        description: `using MySQL at ${where}${applied.length > 0 ? `; applied migrations ${applied.join(", ")}` : ""}`,
        close: () => store.close(),
      };
    } catch (error) {
      const retryable = mapMysqlError(error) !== error;
      const reason = describeError(error);
      if (!retryable || attempt >= config.databaseConnectAttempts) {
        throw new StartupError(
          `cannot use the database at ${where}: ${reason}` +
            (retryable ? ` (gave up after ${attempt} attempts)` : ""),
        );
      }
      log(
        `database at ${where} not reachable (${reason}); attempt ${attempt} of ${config.databaseConnectAttempts}, retrying in ${delayMs} ms`,
      );
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      delayMs *= 2;
    }
  }
}

/** The driver's own words, one line, without the password. */
function describeError(error: unknown): string {
  const e = error as { message?: string; code?: string; errno?: number };
  const text = (e.message ?? String(error)).split("\n")[0] || e.code || "unknown error";
  return e.code !== undefined && !text.includes(e.code) ? `${e.code}: ${text}` : text;
}
