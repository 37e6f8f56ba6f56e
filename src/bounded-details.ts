import { toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { pb } from "@runstore/client/internal";

// gRPC carries error details in a trailer (grpc-status-details-bin), and
// trailers are small: grpcio refuses metadata over 8 KiB by default, and a
// Node server cannot send a header block over 64 KiB at all (the stream
// fails with FRAME_SIZE_ERROR and the connection with it). An idempotency
// conflict carries a whole row, whose metadata and kwargs may be far larger.
// So a large row travels as a reference instead: a Run with only run_id and
// idempotency_key set (no created_at, which every stored row has), and the
// SDKs read the row with Get. The same on every protocol, so that clients
// need one rule.

/** The largest row (binary proto bytes) an idempotency conflict carries whole. */
export const MAX_INLINE_ROW_BYTES = 4096;

/**
 * `error`, or, when it is an idempotency conflict whose row is larger than
 * MAX_INLINE_ROW_BYTES, the same conflict carrying a reference to the row.
 */
export function boundedDetails(error: unknown): unknown {
  if (!(error instanceof ConnectError) || error.code !== Code.AlreadyExists) return error;
  const [detail] = error.findDetails(pb.IdempotencyConflictSchema);
  const row = detail?.existing;
  if (row === undefined || toBinary(pb.RunSchema, row).length <= MAX_INLINE_ROW_BYTES) {
    return error;
  }
  const reference = { runId: row.runId, idempotencyKey: row.idempotencyKey };
  return new ConnectError(error.rawMessage, Code.AlreadyExists, error.metadata, [
    { desc: pb.IdempotencyConflictSchema, value: { existing: reference } },
  ]);
}

/** `call`, with an oversized idempotency conflict turned into a reference. */
export function withBoundedDetails<T>(call: Promise<T>): Promise<T> {
  return call.catch((error: unknown) => {
    throw boundedDetails(error);
  });
}
