import { invalidArgument } from "@runstore/client/internal";

// WatchRuns' resume cursor (docs/contract.md, "Live changes"): opaque to
// callers, base64url of JSON {v: 1, id: <change log identity>, s: "<sequence>"}.
// The identity lets a server refuse a cursor of another log (an earlier
// memory store, another database) instead of reading it at a wrong place.

/** A decoded cursor: the log it belongs to and the sequence to resume after. */
export interface WatchCursor {
  id: string;
  sequence: bigint;
}

/** The longest cursor text accepted: far above any we make. */
const MAX_CURSOR_CHARS = 512;
const INT64_MAX = 2n ** 63n - 1n;

/** The cursor text to resume after `sequence` of the log named `id`. */
export function encodeCursor(id: string, sequence: bigint): string {
  return Buffer.from(JSON.stringify({ v: 1, id, s: sequence.toString() })).toString("base64url");
}

/** The cursor `text` stands for; INVALID_ARGUMENT naming `cursor` when it is damaged. */
export function decodeCursor(text: string): WatchCursor {
  if (text.length > MAX_CURSOR_CHARS || !/^[A-Za-z0-9_-]+$/.test(text)) {
    throw invalidArgument("cursor", "is not a cursor this server made (not base64url)");
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(text, "base64url").toString("utf8"));
  } catch {
    throw invalidArgument("cursor", "is not a cursor this server made (not JSON)");
  }
  const { v, id, s } = (typeof value === "object" && value !== null ? value : {}) as Record<
    string,
    unknown
  >;
  const shaped =
    v === 1 &&
    typeof id === "string" &&
    id.length > 0 &&
    id.length <= 128 &&
    typeof s === "string" &&
    /^(0|[1-9][0-9]{0,18})$/.test(s) &&
    BigInt(s) <= INT64_MAX;
  if (!shaped) throw invalidArgument("cursor", "is not a cursor this server made (wrong shape)");
  return { id, sequence: BigInt(s) };
}
