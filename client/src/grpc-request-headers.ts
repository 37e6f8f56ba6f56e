import type * as http2 from "node:http2";
import type { Transport } from "@connectrpc/connect";
import { requestHeader } from "@connectrpc/connect/protocol-grpc";

// The request headers of a gRPC call as Node's HTTP/2 client takes them.
// Connect's requestHeader builds a Headers object (validating and
// normalising every name and value), which the transport then copies into
// a plain object: per call, a Headers with its Map and sorted list, a few
// per cent of the client's CPU. Headers whose names are already lower-case
// tokens and whose values are visible ASCII without surrounding spaces (the
// token and traceparent RemoteRunStore sends) come out of Headers
// unchanged, so they are copied as they are; anything else (other
// characters, a Headers or an array) still goes through requestHeader.

/** Connect's own user-agent and content type, taken from requestHeader itself. */
const CONNECT_DEFAULTS = requestHeader(true, undefined, undefined);
const USER_AGENT = CONNECT_DEFAULTS.get("user-agent") as string;
const CONTENT_TYPE = CONNECT_DEFAULTS.get("content-type") as string;

/** The headers a call is given (Connect's HeadersInit). */
type HeaderInit = Parameters<Transport["unary"]>[3];

const PLAIN_NAME = /^[a-z0-9][a-z0-9._-]*$/;
const PLAIN_VALUE = /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/;

/** What requestHeader(true, timeoutMs, header) gives, as a Node header object. */
export function grpcRequestHeaders(
  timeoutMs: number | undefined,
  header: HeaderInit,
): http2.OutgoingHttpHeaders {
  const plain = header === undefined ? {} : plainRecord(header);
  if (plain === undefined) return nodeHeaders(requestHeader(true, timeoutMs, header));
  const out: http2.OutgoingHttpHeaders = { ...plain };
  out["content-type"] = CONTENT_TYPE;
  if (out["user-agent"] === undefined) out["user-agent"] = USER_AGENT;
  if (timeoutMs !== undefined) out["grpc-timeout"] = `${timeoutMs}m`;
  out.te = "trailers";
  return out;
}

/** `header` when Headers would keep it as it is; else undefined. */
function plainRecord(header: NonNullable<HeaderInit>): Record<string, string> | undefined {
  if (Array.isArray(header) || header instanceof Headers) return undefined;
  const record = header as Record<string, unknown>;
  for (const name of Object.keys(record)) {
    const value = record[name];
    if (!PLAIN_NAME.test(name) || typeof value !== "string" || !PLAIN_VALUE.test(value)) {
      return undefined;
    }
  }
  return record as Record<string, string>;
}

/** Connect's request headers as Node's HTTP/2 client takes them. */
export function nodeHeaders(header: Headers): http2.OutgoingHttpHeaders {
  const headers: http2.OutgoingHttpHeaders = {};
  header.forEach((value, key) => {
    headers[key] = value;
  });
  return headers;
}
