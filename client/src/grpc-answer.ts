import type * as http2 from "node:http2";
import type { DescMessage } from "@bufbuild/protobuf";
import { Code, ConnectError, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import {
  createAsyncIterable,
  envelopeDecompress,
  type MethodSerializationLookup,
  transformSplitEnvelope,
} from "@connectrpc/connect/protocol";
import {
  validateResponseWithCompression,
  validateTrailer,
} from "@connectrpc/connect/protocol-grpc";

// How grpc-unary-transport.ts reads the answer one stream carried: the
// common answer (HTTP 200, gRPC content type, one uncompressed message,
// grpc-status 0 in the trailers) is recognised on Node's own header objects
// and parsed at once; anything else goes through Connect's validation
// (validateResponseWithCompression, the envelope splitter, validateTrailer)
// exactly as connect-node's gRPC transport reads it, so every error keeps
// its code, message and metadata. Why the shortcut: Connect's path builds
// two Headers objects and an async generator per call, a fifth of the
// client's CPU per call in `bench/caller-cpu.ts`; the check below only
// decides which path reads the answer, never what an answer means.

/** What came back on the stream, as Node's HTTP/2 client gave it. */
export interface RawAnswer {
  status: number;
  header: http2.IncomingHttpHeaders;
  trailer: http2.IncomingHttpHeaders | undefined;
  chunks: Uint8Array[];
  rstCode: number;
}

/** The largest answer read, as connect-node's default readMaxBytes. */
export const READ_MAX_BYTES = 0xffffffff;

type Lookup = MethodSerializationLookup<DescMessage, DescMessage>;

/** The response message, or the error the answer carries (as connect-node's gRPC transport reads it). */
export async function answer(
  req: Pick<UnaryRequest, "service" | "method">,
  raw: RawAnswer,
  lookup: Lookup,
  fromResetCode: (rstCode: number) => ConnectError,
): Promise<UnaryResponse> {
  const payload = plainSuccess(raw);
  const message =
    payload === undefined
      ? await validated(raw, lookup, fromResetCode)
      : lookup.getO(true).parse(payload);
  return response(req, raw, message);
}

/** The message bytes of a plain successful answer; undefined for anything else. */
function plainSuccess(raw: RawAnswer): Uint8Array | undefined {
  const { header, trailer } = raw;
  if (raw.status !== 200 || trailer === undefined) return undefined;
  const type = header["content-type"];
  if (type !== "application/grpc+proto" && type !== "application/grpc") return undefined;
  if (
    header["grpc-status"] !== undefined ||
    header["grpc-status-details-bin"] !== undefined ||
    header["grpc-encoding"] !== undefined ||
    trailer["grpc-status"] !== "0" ||
    trailer["grpc-status-details-bin"] !== undefined
  ) {
    return undefined;
  }
  const body = raw.chunks.length === 1 ? (raw.chunks[0] as Uint8Array) : concat(raw.chunks);
  // One envelope, flags 0 (uncompressed, not an end-of-stream frame), filling the body.
  if (body.length < 5 || body[0] !== 0) return undefined;
  const length = new DataView(body.buffer, body.byteOffset, 5).getUint32(1);
  return length === body.length - 5 ? body.subarray(5) : undefined;
}

function concat(chunks: Uint8Array[]): Uint8Array {
  return Buffer.concat(chunks);
}

/** Connect's reading of any answer: every check and error of its gRPC transport. */
async function validated(
  raw: RawAnswer,
  lookup: Lookup,
  fromResetCode: (rstCode: number) => ConnectError,
): Promise<unknown> {
  const header = toHeaders(raw.header);
  const trailer = raw.trailer === undefined ? new Headers() : toHeaders(raw.trailer);
  const { headerError } = validateResponseWithCompression([], raw.status, header);
  let message: unknown;
  for await (const envelope of transformSplitEnvelope(READ_MAX_BYTES)(
    createAsyncIterable(raw.chunks),
  )) {
    if (message !== undefined) {
      throw new ConnectError(
        "protocol error: received extra output message for unary method",
        Code.Unimplemented,
      );
    }
    const { data } = await envelopeDecompress(envelope, null, READ_MAX_BYTES);
    message = lookup.getO(true).parse(data);
  }
  if (!header.has("grpc-status") && !trailer.has("grpc-status") && raw.rstCode !== 0) {
    throw fromResetCode(raw.rstCode);
  }
  validateTrailer(trailer, header);
  if (message === undefined) {
    if (headerError) throw headerError;
    throw new ConnectError(
      "protocol error: missing output message for unary method",
      trailer.has("grpc-status") ? Code.Unimplemented : Code.Unknown,
    );
  }
  if (headerError) {
    throw new ConnectError(
      "protocol error: received output message for unary method with error status",
      Code.Unknown,
    );
  }
  return message;
}

/**
 * The UnaryResponse: its header and trailer become Headers objects only
 * when read (an interceptor or onHeader/onTrailer); RemoteRunStore reads
 * neither.
 */
function response(
  req: Pick<UnaryRequest, "service" | "method">,
  raw: RawAnswer,
  message: unknown,
): UnaryResponse {
  let header: Headers | undefined;
  let trailer: Headers | undefined;
  return {
    stream: false,
    service: req.service,
    method: req.method,
    get header() {
      header ??= toHeaders(raw.header);
      return header;
    },
    get trailer() {
      trailer ??= raw.trailer === undefined ? new Headers() : toHeaders(raw.trailer);
      return trailer;
    },
    message: message as UnaryResponse["message"],
  } as UnaryResponse;
}

/** Node's HTTP/2 headers without the pseudo-headers. */
function toHeaders(node: http2.IncomingHttpHeaders): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(node)) {
    if (name[0] === ":" || value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) headers.append(name, one);
  }
  return headers;
}
