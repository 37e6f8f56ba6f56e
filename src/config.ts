import { readFileSync } from "node:fs";
import { isIP } from "node:net";
import { createSecureContext } from "node:tls";
import type { JwtSettings } from "./auth/jwt.js";
import { JWT_SETTINGS, jwtSettings } from "./auth/jwt-settings.js";
import { ADMIN, type TokenGrant } from "./auth/principal.js";
import { checkDistinct, parseTokenLine } from "./auth/token-grants.js";
import { CONSOLE_SETTINGS, type ConsoleSettings, consoleSettings } from "./console-settings.js";
import { DEFAULT_LIMITS, LIMIT_SETTINGS, type ServerLimits } from "./limits.js";
import { LOG_LEVELS } from "./logger.js";
import { OVERLOAD_SETTINGS, type OverloadSettings, overloadSettings } from "./overload-settings.js";
import {
  RETENTION_SETTINGS,
  type RetentionSettings,
  retentionSettings,
} from "./retention-settings.js";
import type { MysqlOptions } from "./stores/mysql-pool.js";
import {
  DEFAULT_WATCH_SETTINGS,
  WATCH_SETTINGS,
  type WatchSettings,
  watchSettings,
} from "./watch/watch-settings.js";

/** The server's settings, read from the environment. */
export interface Config {
  host: string;
  port: number;
  /** MySQL settings when DATABASE_URL is set; null keeps the in-memory store. */
  database: Required<MysqlOptions> | null;
  /** The in-memory store's budget of estimated row bytes (used when `database` is null). */
  memoryMaxBytes: number;
  /** Runs the in-memory store holds before evicting the oldest finished ones; 0: no such bound. */
  memoryMaxRuns: number;
  /** How old terminal runs are swept (RETENTION_*, retention.ts); null: never. */
  retention: RetentionSettings | null;
  /** Concurrent store calls one caller may have open on MySQL; null: half DB_POOL_SIZE, at least 1. */
  callerShare: number | null;
  /** Store calls running and waiting at once, and the longest wait (overload.ts). */
  overload: OverloadSettings;
  /** Attempts to reach the database at start-up before giving up. */
  databaseConnectAttempts: number;
  /** Start on a database that would lose acknowledged commits in a crash, with a warning (open-store.ts). */
  allowUnsafeDurability: boolean;
  /**
   * Bearer tokens accepted for RunStoreService: a string is an unscoped
   * (admin) token, a TokenGrant a scoped AUTH_TOKENS_FILE line. Empty (and
   * no JWT settings) means no authentication.
   */
  tokens: (string | TokenGrant)[];
  /** How JWT bearer tokens are verified and mapped (AUTH_JWT_*); null: no JWTs. */
  jwt: JwtSettings | null;
  /** Certificate and key (PEM) to serve TLS; a client CA turns on mutual TLS. */
  tls: { cert: Buffer; key: Buffer; clientCa: Buffer | null } | null;
  /** Serve a non-loopback address without tokens and TLS anyway. */
  allowInsecure: boolean;
  maxRequestBytes: number;
  shutdownGraceMs: number;
  logLevel: (typeof LOG_LEVELS)[number];
  /** Port of the Prometheus endpoint; null turns it off. */
  metricsPort: number | null;
  metricsHost: string;
  /** Where the run console listens (CONSOLE_*, console-server.ts); null: no console. */
  console: ConsoleSettings | null;
  healthCheckIntervalMs: number;
  /** Connections, streams, time and answer size (docs/operations.md, "Limits"). */
  limits: ServerLimits;
  /** WatchRuns: the window, heartbeats, the memory change log, the MySQL poll (WATCH_*). */
  watch: WatchSettings;
}

/** A setting that is present but wrong; main.ts prints the message and exits. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Every setting with its default and meaning, each rule it is checked
 * against included: the source of `--help` and the README table.
 */
export const SETTINGS = [
  ["PORT", "50051", "port to listen on, an integer from 0 to 65535 (0: any free port)"],
  [
    "HOST",
    "127.0.0.1",
    "address to listen on; a non-loopback one needs AUTH_TOKENS and TLS, or ALLOW_INSECURE",
  ],
  [
    "DATABASE_URL",
    "(unset)",
    "mysql://user:password@host:port/database (or mariadb://) selects MySQL / MariaDB; " +
      "percent-encode @ / # : ? % in user and password (p@ss → p%40ss); " +
      'the one query parameter is ssl (?ssl={"rejectUnauthorized":true}); unset keeps runs in memory',
  ],
  ["DB_POOL_SIZE", "10", "MySQL connections in the pool, 1 to 1000"],
  [
    "DB_CALLER_SHARE",
    "(unset)",
    "store calls one caller (each bearer token; without one, each client address) may have open at once on MySQL, 1 to 1000 " +
      "(unset: half DB_POOL_SIZE, at least 1); more wait, within their deadline, without holding a connection (counted toward MAX_QUEUED_CALLS)",
  ],
  [
    "DB_POOL_QUEUE_LIMIT",
    "(unset)",
    "requests that may wait for a MySQL pool connection, 1 to 1000000 (unset: 4 × DB_POOL_SIZE); " +
      "one more fails at once with UNAVAILABLE",
  ],
  [
    "MYSQL_PROGRESS_BATCH",
    "400",
    "UpdateRunProgress writes that may wait for a group-commit batch on MySQL, 0 to 100000; " +
      "one more is refused at once with UNAVAILABLE and a retry hint; 0: no group commit (each write its own statement)",
  ],
  ...OVERLOAD_SETTINGS,
  ["DB_CONNECT_TIMEOUT_MS", "10000", "ms to open one MySQL connection, 100 to 600000"],
  [
    "DB_QUERY_TIMEOUT_MS",
    "10000",
    "ms one SQL statement may take before the call fails as UNAVAILABLE, 10 to 3600000",
  ],
  [
    "DB_CONNECT_ATTEMPTS",
    "5",
    "attempts to reach MySQL at start-up (1 s apart, doubling) before exiting, 1 to 100",
  ],
  [
    "ALLOW_UNSAFE_DURABILITY",
    "false",
    "true (or 1): start on a database that may lose acknowledged writes in a crash " +
      "(innodb_flush_log_at_trx_commit other than 1), with a warning; refused otherwise",
  ],
  [
    "AUTH_TOKENS",
    "(unset)",
    "comma-separated bearer tokens for RunStoreService, each at least 16 characters " +
      "without spaces (several at once, to rotate)",
  ],
  [
    "AUTH_TOKENS_FILE",
    "(unset)",
    "file with one bearer token a line (same rule; # comments), added to AUTH_TOKENS; re-read on SIGHUP",
  ],
  [
    "TLS_CERT_FILE",
    "(unset)",
    "PEM certificate (chain) to serve TLS; needs TLS_KEY_FILE; re-read on SIGHUP",
  ],
  ["TLS_KEY_FILE", "(unset)", "PEM private key (unencrypted) for TLS_CERT_FILE; re-read on SIGHUP"],
  [
    "TLS_CLIENT_CA_FILE",
    "(unset)",
    "PEM CA bundle: turns on mutual TLS, refusing clients without a certificate it signed; re-read on SIGHUP",
  ],
  ["ALLOW_INSECURE", "false", "true (or 1): serve a non-loopback HOST without tokens and TLS"],
  [
    "MEMORY_MAX_BYTES",
    "1073741824",
    "estimated bytes of runs the in-memory store may hold, 1048576 to 1099511627776; " +
      "past it writes are RESOURCE_EXHAUSTED",
  ],
  [
    "MEMORY_MAX_RUNS",
    "100000",
    "runs the in-memory store may hold, 0 to 100000000 (0: no bound but MEMORY_MAX_BYTES); " +
      "a new run past it evicts the oldest finished run (by updated_at), and is RESOURCE_EXHAUSTED " +
      "when every run is pending or running",
  ],
  ...RETENTION_SETTINGS,
  [
    "MAX_REQUEST_BYTES",
    "4194304",
    "largest request accepted, 1024 to 1073741824; larger ones get RESOURCE_EXHAUSTED",
  ],
  [
    "SHUTDOWN_GRACE_MS",
    "10000",
    "on SIGTERM, SIGINT, SIGQUIT or SIGUSR2, ms in-flight calls may take to finish, 0 to 3600000",
  ],
  ["LOG_LEVEL", "info", `one of ${LOG_LEVELS.join(", ")}; requests are logged at debug`],
  [
    "METRICS_PORT",
    "(unset)",
    "serve Prometheus metrics at http://METRICS_HOST:METRICS_PORT/metrics, 0 to 65535",
  ],
  ["METRICS_HOST", "127.0.0.1", "address of the metrics endpoint"],
  ...CONSOLE_SETTINGS,
  ...JWT_SETTINGS,
  ["HEALTH_CHECK_INTERVAL_MS", "5000", "ms between health probes of the database, 100 to 3600000"],
  ...LIMIT_SETTINGS.map(
    ([name, key, , , meaning]) => [name, String(DEFAULT_LIMITS[key]), meaning] as const,
  ),
  ...WATCH_SETTINGS.map(
    ([name, key, , , meaning]) => [name, String(DEFAULT_WATCH_SETTINGS[key]), meaning] as const,
  ),
] as const;

/** Reads and validates the settings; each bad value is named in the error. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = integer(env, "PORT", 50051, 0, 65535);
  const host = text(env, "HOST") ?? "127.0.0.1";
  const url = text(env, "DATABASE_URL");
  const database =
    url === undefined
      ? null
      : {
          url: checkDatabaseUrl(url),
          poolSize: integer(env, "DB_POOL_SIZE", 10, 1, 1000),
          poolQueueLimit: integer(
            env,
            "DB_POOL_QUEUE_LIMIT",
            4 * integer(env, "DB_POOL_SIZE", 10, 1, 1000),
            1,
            1_000_000,
          ),
          progressBatch: integer(env, "MYSQL_PROGRESS_BATCH", 400, 0, 100_000),
          connectTimeoutMs: integer(env, "DB_CONNECT_TIMEOUT_MS", 10_000, 100, 600_000),
          queryTimeoutMs: integer(env, "DB_QUERY_TIMEOUT_MS", 10_000, 10, 3_600_000),
        };
  const tokens = readTokens(env);
  const jwt = readJwt(env);
  const tls = readTls(env);
  const allowInsecure = boolean(env, "ALLOW_INSECURE", false);
  if (
    !isLoopback(host) &&
    !allowInsecure &&
    ((tokens.length === 0 && jwt === null) || tls === null)
  ) {
    const missing = [
      tokens.length === 0 && jwt === null ? "AUTH_TOKENS" : "",
      tls === null ? "TLS_CERT_FILE/TLS_KEY_FILE" : "",
    ]
      .filter(Boolean)
      .join(" and ");
    throw new ConfigError(
      `HOST=${host} is reachable from other machines but ${missing} ${missing.includes(" and ") ? "are" : "is"} not set: ` +
        "set them, or ALLOW_INSECURE=true to serve without",
    );
  }
  const logLevel = text(env, "LOG_LEVEL") ?? "info";
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) {
    throw new ConfigError(
      `LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(logLevel)}`,
    );
  }
  const metrics = text(env, "METRICS_PORT");
  return {
    host,
    port,
    database,
    memoryMaxBytes: integer(env, "MEMORY_MAX_BYTES", 1024 ** 3, 1024 ** 2, 1024 ** 4),
    memoryMaxRuns: integer(env, "MEMORY_MAX_RUNS", 100_000, 0, 100_000_000),
    retention: retentionSettings(
      (name) => text(env, name),
      (name, fallback, min, max) => integer(env, name, fallback, min, max),
    ),
    callerShare:
      text(env, "DB_CALLER_SHARE") === undefined
        ? null
        : integer(env, "DB_CALLER_SHARE", 1, 1, 1000),
    overload: overloadSettings(
      (name) => text(env, name),
      (name, fallback, min, max) => integer(env, name, fallback, min, max),
    ),
    databaseConnectAttempts: integer(env, "DB_CONNECT_ATTEMPTS", 5, 1, 100),
    allowUnsafeDurability: boolean(env, "ALLOW_UNSAFE_DURABILITY", false),
    tokens,
    jwt,
    tls,
    allowInsecure,
    maxRequestBytes: integer(env, "MAX_REQUEST_BYTES", 4 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
    shutdownGraceMs: integer(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 3_600_000),
    logLevel: logLevel as Config["logLevel"],
    metricsPort: metrics === undefined ? null : integer(env, "METRICS_PORT", 0, 0, 65535),
    metricsHost: text(env, "METRICS_HOST") ?? "127.0.0.1",
    console: readConsole(env, allowInsecure),
    healthCheckIntervalMs: integer(env, "HEALTH_CHECK_INTERVAL_MS", 5000, 100, 3_600_000),
    limits: readLimits(env),
    watch: watchSettings((name, fallback, min, max) => integer(env, name, fallback, min, max)),
  };
}

function readLimits(env: NodeJS.ProcessEnv): ServerLimits {
  const limits = { ...DEFAULT_LIMITS };
  for (const [name, key, min, max] of LIMIT_SETTINGS) {
    limits[key] = integer(env, name, DEFAULT_LIMITS[key], min, max);
  }
  return limits;
}

/** The CONSOLE_* settings (console-settings.ts), their refusals as ConfigErrors. */
function readConsole(env: NodeJS.ProcessEnv, allowInsecure: boolean): ConsoleSettings | null {
  try {
    return consoleSettings(
      (name) => text(env, name),
      (name, fallback, min, max) => integer(env, name, fallback, min, max),
      isLoopback,
      allowInsecure,
    );
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError((error as Error).message);
  }
}

/** Loopback addresses only this machine reaches; anything else is exposed. */
export function isLoopback(host: string): boolean {
  if (host === "localhost") return true;
  if (isIP(host) === 4) return host.startsWith("127.");
  return host === "::1";
}

function text(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === "" ? undefined : value.trim();
}

function boolean(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = text(env, name);
  if (raw === undefined) return fallback;
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw new ConfigError(`${name} must be true or false, got ${JSON.stringify(raw)}`);
}

function readFile(name: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new ConfigError(`${name}=${path} cannot be read: ${(error as Error).message}`);
  }
}

/**
 * What SIGHUP re-reads without a restart: the tokens (AUTH_TOKENS plus
 * AUTH_TOKENS_FILE) and the TLS certificate, key and client CA, checked by
 * the same rules as at start-up.
 */
export function readReloadable(
  env: NodeJS.ProcessEnv = process.env,
): Pick<Config, "tokens" | "tls"> {
  return { tokens: readTokens(env), tls: readTls(env) };
}

function readTokens(env: NodeJS.ProcessEnv): Config["tokens"] {
  const scoped: TokenGrant[] = [];
  const tokens = (text(env, "AUTH_TOKENS") ?? "").split(",").map((t) => t.trim());
  checkTokenLengths(tokens, "AUTH_TOKENS");
  const file = text(env, "AUTH_TOKENS_FILE");
  if (file !== undefined) {
    const lines = readFile("AUTH_TOKENS_FILE", file).toString("utf8").split(/\r?\n/);
    for (const [index, line] of lines.entries()) {
      const entry = line.trim();
      const where = `AUTH_TOKENS_FILE line ${index + 1}`;
      if (entry.startsWith("#") || entry === "") continue;
      if (/\s/.test(entry)) scoped.push(scopedToken(entry, where));
      else tokens.push(checkTokenLengths([entry], where)[0] ?? entry);
    }
  }
  const kept = tokens.filter((t) => t !== "");
  if (file !== undefined && kept.length === 0 && scoped.length === 0) {
    throw new ConfigError(`AUTH_TOKENS_FILE=${file} holds no token`);
  }
  distinctScopes([...kept.map((token) => ({ token, principal: ADMIN })), ...scoped]);
  return [...kept, ...scoped];
}

/** Refuses a token shorter than 16 characters or holding a space; answers the tokens. */
function checkTokenLengths(tokens: string[], where: string): string[] {
  for (const token of tokens) {
    if (token !== "" && (token.length < 16 || /\s/.test(token))) {
      throw new ConfigError(`${where}: every token must be at least 16 characters without spaces`);
    }
  }
  return tokens;
}

/** The same token with two scopes (two lines, or AUTH_TOKENS and a scoped line) is refused. */
function distinctScopes(grants: readonly TokenGrant[]): void {
  try {
    checkDistinct(grants, "AUTH_TOKENS / AUTH_TOKENS_FILE");
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
}

/** A scoped AUTH_TOKENS_FILE line (`<token> role=… users=…`, docs/security.md). */
function scopedToken(line: string, where: string): TokenGrant {
  try {
    return parseTokenLine(line, where);
  } catch (error) {
    throw new ConfigError((error as Error).message);
  }
}

/** The AUTH_JWT_* settings; null when neither a secret nor a JWKS file is given. */
function readJwt(env: NodeJS.ProcessEnv): JwtSettings | null {
  try {
    return jwtSettings((name) => text(env, name), readFile);
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    throw new ConfigError((error as Error).message);
  }
}

function readTls(env: NodeJS.ProcessEnv): Config["tls"] {
  const cert = text(env, "TLS_CERT_FILE");
  const key = text(env, "TLS_KEY_FILE");
  const ca = text(env, "TLS_CLIENT_CA_FILE");
  if (cert === undefined && key === undefined) {
    if (ca !== undefined)
      throw new ConfigError("TLS_CLIENT_CA_FILE needs TLS_CERT_FILE and TLS_KEY_FILE");
    return null;
  }
  if (cert === undefined || key === undefined) {
    throw new ConfigError("TLS_CERT_FILE and TLS_KEY_FILE must be set together");
  }
  const tls = {
    cert: readFile("TLS_CERT_FILE", cert),
    key: readFile("TLS_KEY_FILE", key),
    clientCa: ca === undefined ? null : readFile("TLS_CLIENT_CA_FILE", ca),
  };
  try {
    createSecureContext({
      cert: tls.cert,
      key: tls.key,
      ...(tls.clientCa ? { ca: tls.clientCa } : {}),
    });
  } catch (error) {
    throw new ConfigError(
      `TLS_CERT_FILE=${cert}, TLS_KEY_FILE=${key}${ca === undefined ? "" : `, TLS_CLIENT_CA_FILE=${ca}`} ` +
        `are not a usable PEM certificate, unencrypted key${ca === undefined ? "" : " and CA"}: ${(error as Error).message}`,
    );
  }
  return tls;
}

/**
 * The URL with its password and query values hidden, for messages and logs.
 * A URL whose user or password may be read wrongly (an unencoded @ / # ? in
 * them) is not shown at all: any part of it could be part of the password.
 */
export function redactUrl(url: string): string {
  const parsed = parseWithoutGuessing(url);
  if (parsed === null) return "(a URL that cannot be shown without its password)";
  if (parsed.password !== "") parsed.password = "***";
  for (const key of new Set(parsed.searchParams.keys())) parsed.searchParams.set(key, "***");
  return parsed.toString();
}

/**
 * The parsed URL, or null when it does not parse or when an "@" or "#"
 * follows its authority: then a password holds an unencoded @ / # ?, the
 * parser took part of it for the host, path or fragment, and nothing of
 * the URL can be shown safely.
 */
function parseWithoutGuessing(url: string): URL | null {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url);
  if (scheme === null) return null;
  const rest = url.slice(scheme[0].length);
  const end = rest.search(/[/?#]/);
  if (end !== -1 && /[@#]/.test(rest.slice(end))) return null;
  try {
    return new URL(url);
  } catch {
    return null;
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

const URL_SHAPE = "mysql://user:password@host:3306/database";
const ENCODE_HINT =
  "percent-encode @ / # : ? % in the user and password (@ is %40, / %2F, # %23, : %3A, ? %3F, % %25)";

/**
 * Checks DATABASE_URL without ever echoing its user or password: a
 * rejected URL is described by its parts that are safe to show (scheme,
 * host, database) or not at all.
 */
function checkDatabaseUrl(url: string): string {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    throw new ConfigError(`DATABASE_URL is not a URL; expected ${URL_SHAPE}`);
  }
  if (scheme !== "mysql" && scheme !== "mariadb") {
    throw new ConfigError(`DATABASE_URL must start with mysql:// or mariadb://, got ${scheme}://…`);
  }
  const parsed = parseWithoutGuessing(url);
  if (parsed === null) {
    throw new ConfigError(`DATABASE_URL cannot be read as ${URL_SHAPE}: ${ENCODE_HINT}`);
  }
  try {
    decodeURIComponent(parsed.username);
    decodeURIComponent(parsed.password);
  } catch {
    throw new ConfigError(
      `DATABASE_URL: a % in the user or password must start a %XX escape: ${ENCODE_HINT}`,
    );
  }
  const shown = `${scheme}://${parsed.username === "" ? "" : "***@"}${parsed.host}${parsed.pathname}`;
  if (parsed.hostname === "") {
    throw new ConfigError(`DATABASE_URL has no host (${shown})`);
  }
  const database = decodeURIComponent(parsed.pathname.replace(/^\//, ""));
  if (database === "" || database.includes("/")) {
    throw new ConfigError(
      `DATABASE_URL must name one database, as in mysql://user@host:3306/runstore (${shown})`,
    );
  }
  for (const [key, value] of parsed.searchParams) {
    if (key !== "ssl") {
      throw new ConfigError(
        `DATABASE_URL: unknown query parameter ${JSON.stringify(key)}; the only one is ssl (${shown})`,
      );
    }
    if (value.trim().startsWith("{") && !isJsonObject(value)) {
      throw new ConfigError(
        `DATABASE_URL: ssl must be a JSON object such as {"rejectUnauthorized":true} (${shown})`,
      );
    }
  }
  return url;
}

function isJsonObject(text: string): boolean {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}
