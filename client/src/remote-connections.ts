import type * as http2 from "node:http2";
import type * as https from "node:https";
import type { ConnectError, Interceptor, Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
  Http2SessionManager,
  type Http2SessionOptions,
} from "@connectrpc/connect-node";
import { failoverPolicy } from "./endpoints.js";
import { createFailoverTransport, type Endpoint } from "./failover-transport.js";
import { createGrpcUnaryTransport } from "./grpc-unary-transport.js";
import type {
  RemoteProtocol,
  RemoteRunStoreOptions,
  RemoteTlsOptions,
} from "./remote-run-store.js";
import { CertificateAgent, CertificateSessionManager, type RefusalCounter } from "./tls-errors.js";

// The connections a RemoteRunStore opens from its base URL(s): one HTTP/2
// session manager (or HTTP/1.1 agent) and one transport per endpoint, all
// with the same protocol, TLS, keepalive and limits. With one URL the
// store's transport is that endpoint's own, exactly as before endpoints
// lists existed; with several, a failover transport spreads calls over them.

/** The server's default request limit, which the client keeps to unless told otherwise. */
export const DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024;

/** The keepalive PING interval when `keepAliveIntervalMs` is not given. */
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 30_000;

/** What a RemoteRunStore opened to reach its server(s). */
export interface RemoteConnections {
  transport: Transport;
  /** What notices a refused client certificate (refusedCertificateAsUnauthenticated). */
  watch: Http2SessionManager | https.Agent | RefusalCounter | undefined;
  /** Closes every connection; calls in flight end with `reason`. */
  close(reason: ConnectError): void;
}

/** Opens (lazily: nothing connects before the first call) the connections to `urls`. */
export function openConnections(
  options: RemoteRunStoreOptions,
  urls: readonly string[],
): RemoteConnections {
  const protocol = options.protocol ?? "grpc";
  const tls = tlsOptions(urls[0] as string, options.tls);
  const policy = failoverPolicy(options.failover);
  // gRPC needs HTTP/2; the other two may also run over HTTP/1.1.
  const http1 = options.httpVersion === "1.1" && protocol !== "grpc";
  const ping = http1 ? undefined : pingOptions(options.keepAliveIntervalMs);
  // One agent serves every host; only needed to notice a refused certificate.
  const agent =
    http1 && tls?.cert !== undefined ? new CertificateAgent({ keepAlive: true }) : undefined;
  const managers: Http2SessionManager[] = [];
  const endpoints: Endpoint[] = urls.map((url) => {
    const sessionManager = ping === undefined ? undefined : sessionManagerFor(url, ping, tls);
    if (sessionManager !== undefined) managers.push(sessionManager);
    const transport = buildTransport(protocol, {
      baseUrl: url,
      writeMaxBytes: options.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES,
      interceptors: options.interceptors ?? [],
      sessionManager,
      tls: agent === undefined ? tls : { ...tls, agent },
    });
    return { url, transport };
  });
  const single = endpoints.length === 1;
  return {
    transport: single
      ? (endpoints[0] as Endpoint).transport
      : createFailoverTransport(endpoints, policy),
    watch: agent ?? (single ? managers[0] : refusalsOf(managers)),
    close(reason) {
      for (const manager of managers) manager.abort(reason);
      agent?.destroy();
    },
  };
}

/** With a client certificate, the manager also notices the server refusing it. */
function sessionManagerFor(
  url: string,
  ping: Http2SessionOptions,
  tls: http2.SecureClientSessionOptions | undefined,
): Http2SessionManager {
  return tls?.cert === undefined
    ? new Http2SessionManager(url, ping, tls)
    : new CertificateSessionManager(url, ping, tls);
}

/** The refusals of several certificate-presenting managers together; none without a certificate. */
function refusalsOf(managers: readonly Http2SessionManager[]): RefusalCounter | undefined {
  const watched = managers.filter((m) => m instanceof CertificateSessionManager);
  if (watched.length === 0) return undefined;
  return {
    get refusals() {
      return watched.reduce((sum, manager) => sum + manager.refusals, 0);
    },
  };
}

function buildTransport(
  protocol: RemoteProtocol,
  options: {
    baseUrl: string;
    writeMaxBytes: number;
    interceptors: Interceptor[];
    sessionManager: Http2SessionManager | undefined;
    tls: (https.RequestOptions & http2.SecureClientSessionOptions) | undefined;
  },
): Transport {
  const { sessionManager, tls, ...common } = options;
  switch (protocol) {
    case "grpc": {
      const connect = createGrpcTransport({ ...common, sessionManager });
      // Unary calls (every RunStore method) take the lean path.
      return sessionManager === undefined
        ? connect
        : createGrpcUnaryTransport({ ...common, sessionManager, streaming: connect });
    }
    case "grpc-web":
      return sessionManager === undefined
        ? createGrpcWebTransport({ ...common, httpVersion: "1.1", nodeOptions: tls })
        : createGrpcWebTransport({ ...common, httpVersion: "2", sessionManager });
    case "connect":
      return sessionManager === undefined
        ? createConnectTransport({ ...common, httpVersion: "1.1", nodeOptions: tls })
        : createConnectTransport({ ...common, httpVersion: "2", sessionManager });
    default:
      throw new TypeError(`unknown protocol ${String(protocol)}: use grpc, grpc-web or connect`);
  }
}

/**
 * The TLS options as Node's https.request() (HTTP/1.1) and http2.connect()
 * (HTTP/2, via the session manager) both take them. TLS settings for a
 * plaintext URL are refused: silently sending credentials in the clear
 * because of a typo in the scheme is worse than failing at start-up.
 */
function tlsOptions(
  baseUrl: string,
  tls: RemoteTlsOptions | undefined,
): (https.RequestOptions & http2.SecureClientSessionOptions) | undefined {
  if (tls === undefined) return undefined;
  if (new URL(baseUrl).protocol !== "https:") {
    throw new TypeError(`tls options need an https:// baseUrl, got ${baseUrl}`);
  }
  if ((tls.cert === undefined) !== (tls.key === undefined)) {
    throw new TypeError("tls.cert and tls.key go together (mTLS needs both)");
  }
  const out: https.RequestOptions & http2.SecureClientSessionOptions = {};
  if (tls.ca !== undefined) out.ca = tls.ca;
  if (tls.cert !== undefined) out.cert = tls.cert;
  if (tls.key !== undefined) out.key = tls.key;
  if (tls.servername !== undefined) out.servername = tls.servername;
  if (tls.rejectUnauthorized !== undefined) out.rejectUnauthorized = tls.rejectUnauthorized;
  return out;
}

/** Keepalive as the session manager takes it; idle timeout and PING timeout keep Connect's defaults. */
function pingOptions(intervalMs: number | undefined): Http2SessionOptions {
  const interval = intervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS;
  if (!Number.isFinite(interval) || interval < 0) {
    throw new TypeError(`keepAliveIntervalMs must be a finite number >= 0, got ${interval}`);
  }
  return interval === 0 ? {} : { pingIntervalMs: interval };
}
