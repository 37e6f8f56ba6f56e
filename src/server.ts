import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { RunStore } from "@runstore/client";
import { internalErrors } from "./interceptors/internal-errors.js";
import { routes } from "./routes.js";

/** The default request size limit; larger requests get RESOURCE_EXHAUSTED. */
export const DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/** What a server is built from. */
export interface ServerOptions {
  store: RunStore;
  /** Default 0: any free port. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 4 MiB. */
  maxRequestBytes?: number;
  /** Sees every unexpected error before it is answered as INTERNAL. Default: console.error. */
  onInternalError?: (error: unknown, procedure: string) => void;
}

/** A listening server. */
export interface RunningServer {
  /** e.g. `http://127.0.0.1:50051` */
  url: string;
  port: number;
  /** Stops accepting, lets open calls finish, closes every HTTP/2 session. */
  close(): Promise<void>;
}

/**
 * Builds the HTTP/2 server that answers gRPC, gRPC-Web and Connect, without
 * listening: startup belongs to the caller.
 */
export function createServer(options: ServerOptions): http2.Http2Server {
  const handler = connectNodeAdapter({
    routes: routes(options.store),
    readMaxBytes: options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES,
    interceptors: [
      internalErrors(
        options.onInternalError ??
          ((error, procedure) => console.error(`internal error in ${procedure}:`, error)),
      ),
    ],
  });
  return http2.createServer(handler);
}

/**
 * Builds and starts a server; for tests, embedding and main.ts. The caller
 * owns the store and closes it after the server.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const server = createServer(options);
  // Node 20's http2 server.close() waits for idle sessions forever: track them.
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on("session", (session) => {
    sessions.add(session);
    session.once("close", () => sessions.delete(session));
  });
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const urlHost = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        for (const session of sessions) session.close();
      }),
  };
}
