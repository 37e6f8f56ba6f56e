import { Code, ConnectError } from "@connectrpc/connect";
import type { RunStore } from "@runstore/client";
import { type Config, redactUrl } from "./config.js";
import { MemoryRunStore } from "./stores/memory-run-store.js";
import {
  judgeDurability,
  readDatabaseSettings,
  type ServerSettings,
} from "./stores/mysql-durability.js";
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

/** What the start-up line says of a Galera node (mysql-pool.ts's causality checks). */
const GALERA_NOTE =
  "a Galera cluster node (wsrep_on): causality checks on every connection (wsrep_sync_wait = 3)";

/** The database could not be used at start-up; main.ts prints the message and exits. */
export class StartupError extends Error {
  override name = "StartupError";
}

/**
 * Opens the configured store. For MySQL: applies pending migrations and
 * reads the server's settings, retrying while the database is unreachable
 * (bounded by DB_CONNECT_ATTEMPTS, 1 s apart and doubling), and fails at
 * once on errors a retry cannot fix (access denied, bad database name) and
 * on a server that would lose acknowledged commits in a crash, unless
 * ALLOW_UNSAFE_DURABILITY (then it warns). `readSettings` is how the
 * settings are read; a test hands in its own to see the refusal, since the
 * test server's global settings are not ours to change.
 */
export async function openStore(
  config: Config,
  log: (line: string) => void = () => {},
  readSettings: (
    options: NonNullable<Config["database"]>,
  ) => Promise<ServerSettings> = readDatabaseSettings,
): Promise<OpenedStore> {
  if (config.database === null) {
    return {
      store: new MemoryRunStore({
        maxBytes: config.memoryMaxBytes,
        maxRuns: config.memoryMaxRuns,
        watchLogMax: config.watch.logMax,
      }),
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
      const settings = await readSettings(config.database);
      checkDurability(settings, config.allowUnsafeDurability, where, log);
      const store = MysqlRunStore.open({
        ...config.database,
        maxAllowedPacketBytes: settings.maxAllowedPacket,
      });
      return {
        store,
        description:
          `using MySQL at ${where}` +
          (settings.galera === true ? `; ${GALERA_NOTE}` : "") +
          (applied.length > 0 ? `; applied migrations ${applied.join(", ")}` : ""),
        close: () => store.close(),
      };
    } catch (error) {
      if (error instanceof StartupError) throw error;
      const mapped = mapMysqlError(error);
      const retryable = mapped instanceof ConnectError && mapped.code === Code.Unavailable;
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

/**
 * Refuses a database whose acknowledged commits would not survive a crash
 * (mysql-durability.ts), or with `allowUnsafe` logs why it is unsafe;
 * warnings (an unsynced binary log) are logged either way.
 */
function checkDurability(
  settings: ServerSettings,
  allowUnsafe: boolean,
  where: string,
  log: (line: string) => void,
): void {
  const { unsafe, warnings } = judgeDurability(settings);
  if (unsafe.length > 0 && !allowUnsafe) {
    throw new StartupError(
      `refusing the database at ${where}: ${unsafe.join("; ")} (or set ALLOW_UNSAFE_DURABILITY=true to start anyway)`,
    );
  }
  for (const risk of unsafe) {
    log(`database at ${where}: ${risk} (starting anyway: ALLOW_UNSAFE_DURABILITY=true)`);
  }
  for (const risk of warnings) log(`database at ${where}: ${risk}`);
}

/** The driver's own words, one line, without the password. */
function describeError(error: unknown): string {
  const e = error as { message?: string; code?: string; errno?: number };
  const text = (e.message ?? String(error)).split("\n")[0] || e.code || "unknown error";
  return e.code !== undefined && !text.includes(e.code) ? `${e.code}: ${text}` : text;
}
