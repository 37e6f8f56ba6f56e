import { createHash } from "node:crypto";
import { invalidArgument } from "@runstore/client/internal";

// Keyset page tokens (docs/contract.md, "Pages"), the same on every backend.
// A token is opaque to callers: base64url of a small JSON object holding the
// list it belongs to, a fingerprint of that request's filters, the sort key
// of the page's last row and, for lists whose range ends at "now", the
// instant the first page pinned. It is not signed: a forged token can only
// move the start of a list the caller may read anyway; the fingerprint only
// catches a token passed to another request by mistake.

/** The lowest and highest page_size; the default when only a token is given. */
export const PAGE_SIZE_MIN = 1;
export const PAGE_SIZE_MAX = 1000;
export const DEFAULT_PAGE_SIZE = 100;

/** What a page token holds once decoded. */
export interface PageCursor {
  /** The sort key of the previous page's last row, e.g. [created_at, run_id]. */
  after: string[];
  /** An instant the first page fixed (its "now"), or null. */
  pinned: string | null;
}

interface TokenBody {
  v: 1;
  l: string;
  f: string;
  k: string[];
  p: string | null;
}

/** A short digest of a list name and its canonical filters. */
function fingerprint(list: string, filters: unknown): string {
  return createHash("sha256")
    .update(`${list}\n${JSON.stringify(filters)}`)
    .digest("base64url")
    .slice(0, 16);
}

/** The token of the page after the one ending at `after`. */
export function encodePageToken(
  list: string,
  filters: unknown,
  after: string[],
  pinned: string | null,
): string {
  const body: TokenBody = { v: 1, l: list, f: fingerprint(list, filters), k: after, p: pinned };
  return Buffer.from(JSON.stringify(body)).toString("base64url");
}

/** The decoded token, or INVALID_ARGUMENT page_token when it is not one of this request. */
export function decodePageToken(
  token: string,
  list: string,
  filters: unknown,
  keyLength: number,
): PageCursor {
  const body = parseBody(token);
  if (body === null || body.k.length !== keyLength) {
    throw invalidArgument("page_token", "is not a page token (damaged or from another list)");
  }
  if (body.l !== list || body.f !== fingerprint(list, filters)) {
    throw invalidArgument("page_token", "belongs to a request with other filters");
  }
  return { after: body.k, pinned: body.p };
}

function parseBody(token: string): TokenBody | null {
  try {
    const body: unknown = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
    if (typeof body !== "object" || body === null) return null;
    const { v, l, f, k, p } = body as Record<string, unknown>;
    const keys = Array.isArray(k) && k.every((part) => typeof part === "string");
    if (v !== 1 || typeof l !== "string" || typeof f !== "string" || !keys) return null;
    if (p !== null && typeof p !== "string") return null;
    return body as TokenBody;
  } catch {
    return null;
  }
}
