import { readdirSync, readFileSync, statSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { extname, join } from "node:path";
import { fileURLToPath } from "node:url";

/**
 * Where `npm run build` puts the console's bundle (scripts/build-console.mjs):
 * dist/console, found the same way from src/ (tests, tsx) and from dist/.
 */
export const DEFAULT_CONSOLE_ROOT = fileURLToPath(new URL("../dist/console/", import.meta.url));

/**
 * What the console's pages may load: only their own files, and calls to
 * their own origin (the Connect routes beside them). No inline script or
 * style, no framing, no other host.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** The bundle's file types; a file of any other type is not served. */
const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".woff2": "font/woff2",
};

/** What a console server is built from. */
export interface ConsoleServerOptions {
  port: number;
  host: string;
  /** The built bundle; default DEFAULT_CONSOLE_ROOT. */
  root?: string;
  /** Serves a call of the service (its path starts with `/<service type name>/`). */
  rpc: http.RequestListener;
  /** The service's type name, e.g. runstore.v1.RunStoreService. */
  service: string;
}

/** A listening console. */
export interface RunningConsole {
  url: string;
  port: number;
  /** Stops accepting connections and closes idle ones; calls in flight go on. */
  stopAccepting(): void;
  /** Closes every connection left and waits for the server to close. */
  close(): Promise<void>;
}

/** One file of the bundle, read once at start-up. */
interface StaticFile {
  body: Buffer;
  type: string;
}

/**
 * The run console's plain HTTP/1.1 server: the bundle's files (read into
 * memory at start-up, so only those exact paths exist: no path from a
 * request ever reaches the file system) with a strict
 * Content-Security-Policy, and the service's Connect routes on the same
 * origin through `rpc` (the main server's handler: same interceptors, auth
 * and limits). Throws when the bundle is missing.
 */
export async function startConsoleServer(options: ConsoleServerOptions): Promise<RunningConsole> {
  const files = readBundle(options.root ?? DEFAULT_CONSOLE_ROOT);
  const prefix = `/${options.service}/`;
  const server = http.createServer((req, res) => {
    res.setHeader("x-content-type-options", "nosniff");
    if ((req.url ?? "").startsWith(prefix)) options.rpc(req, res);
    else serveFile(files, req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = options.host.includes(":") ? `[${options.host}]` : options.host;
  const closed = new Promise<void>((resolve) => server.once("close", () => resolve()));
  return {
    url: `http://${urlHost}:${port}`,
    port,
    stopAccepting() {
      server.close();
      server.closeIdleConnections();
    },
    async close() {
      if (server.listening) server.close();
      server.closeAllConnections();
      await closed;
    },
  };
}

/** Every file of the bundle by its URL path; "/" is index.html. */
function readBundle(root: string): Map<string, StaticFile> {
  let names: string[];
  try {
    names = readdirSync(root).filter((name) => statSync(join(root, name)).isFile());
  } catch {
    names = [];
  }
  if (!names.includes("index.html")) {
    throw new Error(`the console's bundle is not in ${root}: run npm run build`);
  }
  const files = new Map<string, StaticFile>();
  for (const name of names) {
    const type = TYPES[extname(name)];
    if (type !== undefined) files.set(`/${name}`, { body: readFileSync(join(root, name)), type });
  }
  const index = files.get("/index.html");
  if (index !== undefined) files.set("/", index);
  return files;
}

/** GET or HEAD of a bundle file; anything else is 404 (or 405 for another method). */
function serveFile(
  files: Map<string, StaticFile>,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): void {
  const path = (req.url ?? "").split("?")[0] ?? "";
  const file = files.get(path);
  if (req.method !== "GET" && req.method !== "HEAD") {
    answer(res, 405, "method not allowed\n", { allow: "GET, HEAD" });
  } else if (file === undefined) {
    answer(res, 404, "not found\n");
  } else {
    res.writeHead(200, {
      "content-type": file.type,
      "content-length": file.body.length,
      "content-security-policy": CONSOLE_CSP,
      "referrer-policy": "no-referrer",
      "cache-control": "no-cache",
    });
    res.end(req.method === "HEAD" ? undefined : file.body);
  }
}

function answer(
  res: http.ServerResponse,
  status: number,
  text: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, {
    "content-type": "text/plain; charset=utf-8",
    "content-security-policy": CONSOLE_CSP,
    ...headers,
  });
  res.end(text);
}
