import type { DescMessage, DescMethodUnary } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  createContextValues,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import {
  createAsyncIterable,
  createMethodSerializationLookup,
  createMethodUrl,
  encodeEnvelope,
  envelopeDecompress,
  type MethodSerializationLookup,
  runUnaryCall,
  transformSplitEnvelope,
} from "@connectrpc/connect/protocol";
import {
  requestHeader,
  validateResponseWithCompression,
  validateTrailer,
} from "@connectrpc/connect/protocol-grpc";
import { createNodeHttpClient, type Http2SessionManager } from "@connectrpc/connect-node";

// Candidate: runUnaryCall over connect-node's own HTTP/2 client function
// (createNodeHttpClient), one envelope out, one for-await over the body in.

export interface GrpcUnaryTransportOptions {
  baseUrl: string;
  sessionManager: Http2SessionManager;
  writeMaxBytes: number;
  interceptors: Interceptor[];
  streaming: Transport;
}

const READ_MAX_BYTES = 0xffffffff;

export function createGrpcUnaryNodeClientTransport(options: GrpcUnaryTransportOptions): Transport {
  const http = createNodeHttpClient({
    httpVersion: "2",
    sessionProvider: () => options.sessionManager,
  });
  const serializers = new WeakMap<
    DescMethodUnary,
    MethodSerializationLookup<DescMessage, DescMessage>
  >();
  const serializer = (method: DescMethodUnary) => {
    let lookup = serializers.get(method);
    if (lookup === undefined) {
      lookup = createMethodSerializationLookup(method, undefined, undefined, {
        writeMaxBytes: options.writeMaxBytes,
        readMaxBytes: READ_MAX_BYTES,
      });
      serializers.set(method, lookup);
    }
    return lookup;
  };
  return {
    unary(method, signal, timeoutMs, header, input, contextValues) {
      const timeout = timeoutMs === undefined || timeoutMs <= 0 ? undefined : timeoutMs;
      return runUnaryCall({
        interceptors: options.interceptors,
        signal,
        timeoutMs: timeout,
        req: {
          stream: false,
          service: method.parent,
          method,
          requestMethod: "POST",
          url: createMethodUrl(options.baseUrl, method),
          header: requestHeader(true, timeout, header),
          contextValues: contextValues ?? createContextValues(),
          message: input,
        },
        next: async (req) => {
          const lookup = serializer(req.method as DescMethodUnary);
          const res = await http({
            url: req.url,
            method: "POST",
            header: req.header,
            signal: req.signal,
            body: createAsyncIterable([
              encodeEnvelope(0, lookup.getI(true).serialize(req.message)),
            ]),
          });
          const { headerError } = validateResponseWithCompression([], res.status, res.header);
          let message: unknown;
          for await (const envelope of transformSplitEnvelope(READ_MAX_BYTES)(res.body)) {
            if (message !== undefined) {
              throw new ConnectError(
                "protocol error: received extra output message for unary method",
                Code.Unimplemented,
              );
            }
            const { data } = await envelopeDecompress(envelope, null, READ_MAX_BYTES);
            message = lookup.getO(true).parse(data);
          }
          validateTrailer(res.trailer, res.header);
          if (message === undefined) {
            if (headerError) throw headerError;
            throw new ConnectError(
              "protocol error: missing output message for unary method",
              res.trailer.has("grpc-status") ? Code.Unimplemented : Code.Unknown,
            );
          }
          if (headerError) {
            throw new ConnectError(
              "protocol error: received output message for unary method with error status",
              Code.Unknown,
            );
          }
          return {
            stream: false,
            service: req.service,
            method: req.method,
            header: res.header,
            trailer: res.trailer,
            message,
          } as never;
        },
      });
    },
    stream(method, signal, timeoutMs, header, input, contextValues) {
      return options.streaming.stream(method, signal, timeoutMs, header, input, contextValues);
    },
  };
}
