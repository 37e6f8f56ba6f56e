import type { MysqlOptions } from "./stores/mysql-pool.js";

/** The server's settings, read from the environment. */
export interface Config {
  host: string;
  port: number;
  /** MySQL settings when DATABASE_URL is set; null keeps the in-memory store. */
  database: Required<MysqlOptions> | null;
  /** Attempts to reach the database at start-up before giving up. */
  databaseConnectAttempts: number;
}

/** A setting that is present but wrong; main.ts prints the message and exits. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Every setting with its default and meaning: the source of `--help` and the README table. */
export const SETTINGS = [
  ["PORT", "50051", "port to listen on (0: any free port)"],
  ["HOST", "127.0.0.1", "address to listen on"],
  [
    "DATABASE_URL",
    "(unset)",
    "mysql://user:pass@host:port/db selects MySQL; unset keeps runs in memory",
  ],
  ["DB_POOL_SIZE", "10", "MySQL connections in the pool"],
  ["DB_CONNECT_TIMEOUT_MS", "10000", "time to open one MySQL connection"],
  [
    "DB_QUERY_TIMEOUT_MS",
    "10000",
    "time one SQL statement may take before the call fails as UNAVAILABLE",
  ],
  [
    "DB_CONNECT_ATTEMPTS",
    "5",
    "attempts to reach MySQL at start-up (1 s apart, doubling) before exiting",
  ],
] as const;

/** Reads and validates the settings; each bad value is named in the error. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = integer(env, "PORT", 50051, 0, 65535);
  const host = env.HOST === undefined || env.HOST === "" ? "127.0.0.1" : env.HOST;
  const url = env.DATABASE_URL;
  const database =
    url === undefined || url === ""
      ? null
      : {
          url: checkDatabaseUrl(url),
          poolSize: integer(env, "DB_POOL_SIZE", 10, 1, 1000),
          connectTimeoutMs: integer(env, "DB_CONNECT_TIMEOUT_MS", 10_000, 100, 600_000),
          queryTimeoutMs: integer(env, "DB_QUERY_TIMEOUT_MS", 10_000, 10, 3_600_000),
        };
  return {
    host,
    port,
    database,
    databaseConnectAttempts: integer(env, "DB_CONNECT_ATTEMPTS", 5, 1, 100),
  };
}

/** The URL with its password hidden, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparseable URL)";
  }
}

function integer(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = env[name];
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(
      `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`,
    );
  }
  return value;
}

function checkDatabaseUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new ConfigError(
      "DATABASE_URL is not a URL; expected mysql://user:pass@host:port/database",
    );
  }
  if (parsed.protocol !== "mysql:") {
    throw new ConfigError(
      `DATABASE_URL must start with mysql://, got ${parsed.protocol}//… (${redactUrl(url)})`,
    );
  }
  if (parsed.hostname === "") {
    throw new ConfigError(`DATABASE_URL has no host (${redactUrl(url)})`);
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ""));
  if (database === "" || database.includes("/")) {
    throw new ConfigError(
      `DATABASE_URL must name one database, as in mysql://user@host:3306/runstore (${redactUrl(url)})`,
    );
  }
  return url;
}
