import type * as http2 from "node:http2";
import {
  type BinaryReadOptions,
  type DescMessage,
  fromBinary,
  type Message,
} from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";

// gRPC message framing for the server's lean unary path (src/grpc-unary.ts),
// with Connect's error codes and messages. Connect's own envelope decoder is
// internal to its async-iterable pipeline, which is what the lean path
// avoids, so the reader is written here; encoding uses Connect's
// encodeEnvelope().

/** One gRPC length-prefixed message. */
export interface Envelope {
  flags: number;
  data: Uint8Array;
}

/**
 * Splits a body into envelopes as its bytes arrive. It holds at most the
 * envelope being received, and refuses one whose prefix claims more than
 * `max` bytes as soon as the prefix is in.
 */
export class EnvelopeReader {
  private chunks: Buffer[] = [];
  private size = 0;
  /** The length of the envelope being received; -1 while its prefix is not in. */
  private length = -1;
  private flags = 0;

  constructor(private readonly max: number = Number.MAX_SAFE_INTEGER) {}

  /** Bytes received but not yet a whole envelope. */
  get pending(): boolean {
    return this.length >= 0 || this.size > 0;
  }

  push(chunk: Buffer): Envelope[] | ConnectError {
    this.chunks.push(chunk);
    this.size += chunk.length;
    const envelopes: Envelope[] = [];
    for (;;) {
      if (this.length < 0) {
        if (this.size < 5) return envelopes;
        const prefix = this.take(5);
        this.flags = prefix[0] as number;
        this.length = prefix.readUInt32BE(1);
        if (this.length > this.max) {
          return new ConnectError(
            `message size ${this.length} is larger than configured readMaxBytes ${this.max}`,
            Code.ResourceExhausted,
          );
        }
      }
      if (this.size < this.length) return envelopes;
      envelopes.push({ flags: this.flags, data: this.take(this.length) });
      this.length = -1;
    }
  }

  /** The first `n` buffered bytes (copied together only when split across chunks). */
  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.size = rest.length;
    return all.subarray(0, n);
  }
}

/** The message an uncompressed envelope holds, or Connect's error for it. */
export function parseEnvelope<T extends DescMessage>(
  envelope: Envelope,
  schema: T,
  options?: Partial<BinaryReadOptions>,
): Message | ConnectError {
  if (envelope.flags & 1) {
    return new ConnectError(
      "received compressed envelope, but do not know how to decompress",
      Code.Internal,
    );
  }
  try {
    return fromBinary(schema, envelope.data, options);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    return new ConnectError(`parse binary: ${why}`, Code.Internal);
  }
}

/** Node's HTTP/2 headers as web Headers, without the pseudo-headers. */
export function webHeaders(headers: http2.IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(":") || value === undefined) continue;
    if (Array.isArray(value)) for (const v of value) out.append(name, v);
    else out.append(name, value);
  }
  return out;
}
