/** The CONSOLE_* rows of config.ts's SETTINGS (the `--help` and docs table). */
export const CONSOLE_SETTINGS = [
  [
    "CONSOLE_PORT",
    "(unset)",
    "serve the run console (a browser page, and RunStoreService over Connect for it) on plain HTTP/1.1 " +
      "at http://CONSOLE_HOST:CONSOLE_PORT/, 0 to 65535 (0: any free port); needs `npm run build`; unset: off",
  ],
  [
    "CONSOLE_HOST",
    "127.0.0.1",
    "address of the console; the console has no TLS, so a non-loopback one needs ALLOW_INSECURE " +
      "(put a TLS proxy in front)",
  ],
] as const;

/** Where the run console listens (console-server.ts). */
export interface ConsoleSettings {
  port: number;
  host: string;
}

/**
 * The console's settings; null when CONSOLE_PORT is unset. A non-loopback
 * CONSOLE_HOST is refused unless `allowInsecure`: the console is plain HTTP,
 * so bearer tokens would cross the network in clear.
 */
export function consoleSettings(
  get: (name: string) => string | undefined,
  integer: (name: string, fallback: number, min: number, max: number) => number,
  isLoopback: (host: string) => boolean,
  allowInsecure: boolean,
): ConsoleSettings | null {
  const host = get("CONSOLE_HOST") ?? "127.0.0.1";
  if (get("CONSOLE_PORT") === undefined) return null;
  if (!isLoopback(host) && !allowInsecure) {
    throw new RangeError(
      `CONSOLE_HOST=${host} is reachable from other machines but the console is plain HTTP: ` +
        "serve it on a loopback address behind a TLS proxy, or set ALLOW_INSECURE=true",
    );
  }
  return { port: integer("CONSOLE_PORT", 0, 0, 65535), host };
}
