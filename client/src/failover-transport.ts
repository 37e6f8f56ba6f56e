import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import {
  brokenConnection,
  calmedStream,
  connectionLost,
  neverConnected,
  refusedStream,
  streamCalmed,
  streamRefused,
} from "./connection-errors.js";
import { EndpointRotation, type FailoverPolicy } from "./endpoints.js";

// RemoteRunStore with several base URLs: one transport per endpoint and this
// one in front of them. Each attempt goes to the next healthy endpoint
// (round robin); an attempt that fails with UNAVAILABLE, a lost connection
// or its deadline leaves its endpoint out for a while, so the retry that
// withRetry makes (idempotent calls only) goes elsewhere. An attempt whose
// connection could not even be opened sent nothing, and one whose stream the
// server refused (REFUSED_STREAM, while it shuts down) was not processed, so
// either moves on at once, within the same attempt, for every RPC (the
// single-attempt ones too).

/** One replica: its base URL and the transport that reaches it. */
export interface Endpoint {
  url: string;
  transport: Transport;
}

/** A Transport spreading calls over `endpoints` and failing over between them. */
export function createFailoverTransport(
  endpoints: readonly Endpoint[],
  policy: FailoverPolicy,
): Transport {
  const rotation = new EndpointRotation(endpoints, policy);
  return {
    async unary(method, signal, timeoutMs, header, input, contextValues) {
      const deadline = timeoutMs === undefined || timeoutMs <= 0 ? undefined : now() + timeoutMs;
      let lastError: unknown;
      for (const i of rotation.order()) {
        let remaining = timeoutMs;
        if (lastError !== undefined && deadline !== undefined) {
          remaining = Math.floor(deadline - now());
          if (remaining <= 0) break;
        }
        const endpoint = endpoints[i] as Endpoint;
        const startedAt = rotation.time();
        try {
          const response = await endpoint.transport.unary(
            method,
            signal,
            remaining,
            header,
            input,
            contextValues,
          );
          rotation.succeeded(i, startedAt);
          return response;
        } catch (error) {
          if (signal?.aborted) throw error;
          const failure = endpointFailure(error);
          if (failure === undefined) throw error;
          rotation.failed(i);
          if (!neverConnected(error) && !refusedStream(error)) throw failure;
          lastError = failure;
        }
      }
      throw lastError;
    },
    stream(method, signal, timeoutMs, header, input, contextValues) {
      const first = endpoints[rotation.order()[0] as number] as Endpoint;
      return first.transport.stream(method, signal, timeoutMs, header, input, contextValues);
    },
  };
}

function now(): number {
  return performance.now();
}

/**
 * The error as the caller gets it when the endpoint, not the request, is at
 * fault, else undefined: UNAVAILABLE (the server or its database cannot
 * serve, or no connection), a stream refused or a connection lost under
 * the call (both made UNAVAILABLE, as gRPC reports them), or
 * DEADLINE_EXCEEDED (a replica may be hung; left out, but the call's time
 * is spent, so not moved). Called only when the call's signal is not
 * aborted, so a CANCELED is a connection the server closed under the call
 * (connect-node reports it so, with no cause), not the caller's doing.
 */
function endpointFailure(error: unknown): ConnectError | undefined {
  const e = ConnectError.from(error);
  if (e.code === Code.Unavailable || e.code === Code.DeadlineExceeded) return e;
  if (refusedStream(error)) return streamRefused(error);
  if (calmedStream(error)) return streamCalmed(error);
  if (e.code === Code.Canceled || brokenConnection(error)) return connectionLost(error);
  return undefined;
}
