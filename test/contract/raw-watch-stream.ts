import * as http2 from "node:http2";
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { RemoteProtocol } from "@runstore/client";
import { pb } from "@runstore/client/internal";

// One WatchRuns call over a bare node:http2 session, in gRPC, Connect or
// gRPC-Web framing, read only when the case reads: the watch steps need a
// client that leaves unread messages to HTTP/2 flow control. (connect-node's
// client, 2.1.2, let a server write 60 changes of 100 KB to a stream whose
// iterator was not advanced, so a slow reader could never be shown; a bare
// stream holds the server at the flow-control window, and it ABORTs.)

const PATH = "/runstore.v1.RunStoreService/WatchRuns";

/** The request headers of each protocol, binary (proto) messages. */
const HEADERS: Record<RemoteProtocol, Record<string, string>> = {
  grpc: { "content-type": "application/grpc+proto", te: "trailers" },
  connect: { "content-type": "application/connect+proto", "connect-protocol-version": "1" },
  "grpc-web": { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
};

/** An envelope's flag bits: Connect's end of stream, gRPC-Web's trailers. */
const CONNECT_END = 0x02;
const GRPC_WEB_TRAILERS = 0x80;

/** An open WatchRuns call, read message by message. */
export interface RawWatchStream {
  /** The next message; null when the server ended the call OK; a ConnectError for a failed one. */
  next(): Promise<pb.WatchRunsResponse | null>;
  /** Cancels the call and closes its connection. */
  close(): void;
}

function envelope(bytes: Uint8Array): Buffer {
  const framed = Buffer.alloc(5 + bytes.length);
  framed.writeUInt32BE(bytes.length, 1);
  framed.set(bytes, 5);
  return framed;
}

/** A status of a gRPC or gRPC-Web call (numeric code, percent-encoded message), as a ConnectError. */
function grpcStatus(status: string | undefined, message: string | undefined): ConnectError | null {
  if (status === undefined)
    return new ConnectError("the call ended without a grpc-status", Code.Unknown);
  if (status === "0") return null;
  return new ConnectError(decodeURIComponent(message ?? ""), Number(status) as Code);
}

/** Connect's end-of-stream message: {"error": {"code": "out_of_range", "message"}} or none. */
function connectEnd(json: string): ConnectError | null {
  const end = JSON.parse(json) as { error?: { code: string; message?: string } };
  if (end.error === undefined) return null;
  const name = end.error.code.replace(/(^|_)([a-z])/g, (_, __, letter: string) =>
    letter.toUpperCase(),
  );
  return new ConnectError(end.error.message ?? "", Code[name as keyof typeof Code] ?? Code.Unknown);
}

/** gRPC-Web's trailer frame: "grpc-status: N\r\ngrpc-message: …\r\n". */
function grpcWebTrailers(text: string): ConnectError | null {
  const fields = new Map(
    text
      .split("\r\n")
      .filter((line) => line.includes(":"))
      .map((line) => {
        const at = line.indexOf(":");
        return [line.slice(0, at).trim().toLowerCase(), line.slice(at + 1).trim()] as const;
      }),
  );
  return grpcStatus(fields.get("grpc-status"), fields.get("grpc-message"));
}

/** Opens a WatchRuns call to `baseUrl` on a session of its own. */
export function openRawWatch(
  baseUrl: string,
  protocol: RemoteProtocol,
  token: string | undefined,
  request: MessageInitShape<typeof pb.WatchRunsRequestSchema>,
): RawWatchStream {
  const session = http2.connect(baseUrl);
  session.on("error", () => {}); // reported through the stream
  const headers: http2.OutgoingHttpHeaders = {
    ":method": "POST",
    ":path": PATH,
    ...HEADERS[protocol],
  };
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  const stream = session.request(headers);
  stream.on("error", () => {}); // a reset shows as the end of the chunks
  stream.end(
    envelope(toBinary(pb.WatchRunsRequestSchema, create(pb.WatchRunsRequestSchema, request))),
  );
  const response = new Promise<http2.IncomingHttpHeaders>((resolve) =>
    stream.once("response", resolve),
  );
  const trailers = new Promise<http2.IncomingHttpHeaders>((resolve) =>
    stream.once("trailers", resolve),
  );
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let buffer = Buffer.alloc(0);
  let ended = false;

  /** Reads until the buffer holds `size` bytes; false when the stream ended first. */
  const fill = async (size: number): Promise<boolean> => {
    while (buffer.length < size) {
      const chunk = ended ? { done: true as const, value: undefined } : await chunks.next();
      if (chunk.done === true) {
        ended = true;
        return false;
      }
      buffer = Buffer.concat([buffer, chunk.value]);
    }
    return true;
  };

  /** How the call ended without (another) message: null for OK, else its error. */
  const ending = async (): Promise<ConnectError | null> => {
    const head = await response;
    if (protocol === "connect") return new ConnectError("no end-of-stream message", Code.Unknown);
    // gRPC: trailers, or the status in the headers of a trailers-only answer.
    const tail = head["grpc-status"] !== undefined ? head : await trailers;
    return grpcStatus(tail["grpc-status"] as string | undefined, tail["grpc-message"] as string);
  };

  return {
    async next() {
      if (!(await fill(5))) {
        const error = await ending();
        if (error !== null) throw error;
        return null;
      }
      const flags = buffer.readUInt8(0);
      const length = buffer.readUInt32BE(1);
      if (!(await fill(5 + length))) {
        throw new ConnectError("the stream ended inside a message", Code.DataLoss);
      }
      const body = buffer.subarray(5, 5 + length);
      buffer = buffer.subarray(5 + length);
      if (protocol === "connect" && (flags & CONNECT_END) !== 0) {
        const error = connectEnd(body.toString("utf8"));
        if (error !== null) throw error;
        return null;
      }
      if (protocol === "grpc-web" && (flags & GRPC_WEB_TRAILERS) !== 0) {
        const error = grpcWebTrailers(body.toString("utf8"));
        if (error !== null) throw error;
        return null;
      }
      return fromBinary(pb.WatchRunsResponseSchema, body);
    },
    close() {
      stream.close(http2.constants.NGHTTP2_CANCEL);
      session.destroy();
    },
  };
}
