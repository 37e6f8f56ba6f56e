import type * as http from "node:http";
import type * as http2 from "node:http2";
import type { ConnectError } from "@connectrpc/connect";
import { encodeEnvelope } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, errorToJsonBytes } from "@connectrpc/connect/protocol-connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { trailerFlag, trailerSerialize } from "@connectrpc/connect/protocol-grpc-web";

// A refusal written without reading the request: the same error in each of
// the three protocols' framing, as connect-node (and grpc-unary.ts) write it,
// its bytes built once so that refusing costs a header write and no more.

/** A response of either HTTP version. */
type Response = http2.Http2ServerResponse | http.ServerResponse;

/** The protocol of a request, from its method and content type; null: none we refuse in. */
export type Form = "grpc" | "grpc-web" | "grpc-web-text" | "connect";

/** The form of a request by its content type (Connect GET: "connect"); null for any other. */
export function formOf(method: string | undefined, contentType: string | undefined): Form | null {
  if (method === "GET") return "connect";
  if (contentType === undefined) return null;
  if (contentType.startsWith("application/grpc-web-text")) return "grpc-web-text";
  if (contentType.startsWith("application/grpc-web")) return "grpc-web";
  if (contentType.startsWith("application/grpc")) return "grpc";
  if (contentType.startsWith("application/proto") || contentType.startsWith("application/json"))
    return "connect";
  return null;
}

/** One refusal, ready to write in every form. */
export class RefusalResponse {
  private readonly grpcTrailers: Record<string, string>;
  private readonly grpcWebBody: Buffer;
  private readonly grpcWebTextBody: Buffer;
  private readonly connectStatus: number;
  private readonly connectHeaders: Record<string, string>;
  private readonly connectBody: Buffer;

  constructor(error: ConnectError) {
    const trailer = new Headers();
    setTrailerStatus(trailer, error);
    this.grpcTrailers = Object.fromEntries(trailer);
    this.grpcWebBody = Buffer.from(encodeEnvelope(trailerFlag, trailerSerialize(trailer)));
    this.grpcWebTextBody = Buffer.from(this.grpcWebBody.toString("base64"));
    this.connectStatus = codeToHttpStatus(error.code);
    this.connectHeaders = { "content-type": "application/json" };
    error.metadata.forEach((value, key) => {
      this.connectHeaders[key] = value;
    });
    this.connectBody = Buffer.from(errorToJsonBytes(error, {}));
  }

  /** Answers `res` in `form`; the request's content type is echoed for gRPC and gRPC-Web. */
  write(form: Form, contentType: string | undefined, res: Response): void {
    switch (form) {
      case "grpc":
        res.writeHead(200, { "content-type": contentType });
        res.addTrailers(this.grpcTrailers);
        res.end();
        return;
      case "grpc-web":
        res.writeHead(200, { "content-type": contentType });
        res.end(this.grpcWebBody);
        return;
      case "grpc-web-text":
        res.writeHead(200, { "content-type": contentType });
        res.end(this.grpcWebTextBody);
        return;
      case "connect":
        res.writeHead(this.connectStatus, this.connectHeaders);
        res.end(this.connectBody);
    }
  }
}
