import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import type { ServerLimits } from "./limits.js";
import type { Logger } from "./logger.js";
import { logTlsRefusals } from "./tls-refusal-log.js";

/** PEM material for TLS; a client CA turns on mutual TLS. */
export interface TlsOptions {
  cert: string | Buffer;
  key: string | Buffer;
  /** When set, clients must present a certificate signed by this CA. */
  clientCa?: string | Buffer | null;
}

/** The server startServer builds: plaintext or TLS. */
export type Http2AnyServer = http2.Http2Server | http2.Http2SecureServer;

/**
 * Plaintext HTTP/2, or with `tls` HTTP/2 and HTTP/1.1 (for Connect and
 * gRPC-Web clients), mutual when a client CA is given. Requests go to
 * whoever listens for 'request'.
 */
export function createHttp2Server(
  tls: TlsOptions | null,
  logger: Logger,
  limits: Pick<ServerLimits, "maxConcurrentStreams" | "firstRequestTimeoutMs">,
): Http2AnyServer {
  const settings = { settings: { maxConcurrentStreams: limits.maxConcurrentStreams } };
  if (tls === null) return http2.createServer(settings);
  const server = http2.createSecureServer({
    ...settings,
    handshakeTimeout: limits.firstRequestTimeoutMs,
    cert: tls.cert,
    key: tls.key,
    allowHTTP1: true,
    ...(tls.clientCa ? { ca: tls.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
  });
  logTlsRefusals(server, logger);
  return server;
}

/** Listens on `host:port` (port 0: any free port); resolves with the port. */
export async function listen(server: Http2AnyServer, port: number, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/**
 * New TLS connections get this certificate, key and client CA; connections
 * already open keep the ones they were made with, so nothing is dropped.
 * A plaintext server has no certificate to replace.
 */
export function replaceCertificate(server: Http2AnyServer, tls: TlsOptions): void {
  if (!("setSecureContext" in server)) throw new Error("the server does not serve TLS");
  server.setSecureContext({
    cert: tls.cert,
    key: tls.key,
    ...(tls.clientCa ? { ca: tls.clientCa } : {}),
  });
}
