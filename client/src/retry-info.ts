import { create } from "@bufbuild/protobuf";
import { durationFromMs, durationMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { RetryInfoSchema } from "./gen/google/rpc/retry_info_pb.js";

// The retry hint of an overload refusal: the server answers UNAVAILABLE with
// a google.rpc.RetryInfo detail only when it refused the call before the
// call touched the store (docs/operations.md, "Overload"), so the hint also
// says that repeating the call is safe, whatever the RPC.

/** The trailer gRPC's own retry machinery reads for the same hint. */
export const RETRY_PUSHBACK_HEADER = "grpc-retry-pushback-ms";

/**
 * The server's refusal of a call it did not run: UNAVAILABLE with
 * `message`, a RetryInfo detail of `retryAfterMs` and the
 * grpc-retry-pushback-ms trailer of the same value.
 */
export function refusedBeforeRunning(message: string, retryAfterMs: number): ConnectError {
  const ms = Math.max(0, Math.round(retryAfterMs));
  const detail = {
    desc: RetryInfoSchema,
    value: create(RetryInfoSchema, { retryDelay: durationFromMs(ms) }),
  };
  return new ConnectError(message, Code.Unavailable, { [RETRY_PUSHBACK_HEADER]: String(ms) }, [
    detail,
  ]);
}

/**
 * The retry delay in ms an UNAVAILABLE carries as a RetryInfo detail: the
 * server refused the call before running it. null for any other error, an
 * UNAVAILABLE without the detail included (it may have been applied).
 */
export function retryDelayOf(error: unknown): number | null {
  if (!(error instanceof ConnectError) || error.code !== Code.Unavailable) return null;
  const [info] = error.findDetails(RetryInfoSchema);
  if (info?.retryDelay === undefined) return null;
  const ms = durationMs(info.retryDelay);
  return Number.isFinite(ms) && ms >= 0 ? ms : null;
}
