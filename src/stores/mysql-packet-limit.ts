import { Code, ConnectError } from "@connectrpc/connect";
import type { SqlValues } from "./mysql-rows.js";

/**
 * Room in a COM_STMT_EXECUTE packet besides the statement's values: the
 * header, the NULL bitmap and the parameter types (a few bytes each, counted
 * per value below), with plenty to spare.
 */
const PACKET_OVERHEAD_BYTES = 1024;
const PER_VALUE_BYTES = 16;

/**
 * Refuses, before it is sent, a statement the database would refuse for
 * being over its max_allowed_packet (`limitBytes`): RESOURCE_EXHAUSTED,
 * never retried, since the same request can never fit. The message starts
 * with the column (= the wire field) of the largest value, the one to make
 * smaller. Sending it would get errno 1153 and a closed connection, which
 * looks like a lost database.
 */
export function checkPacketLimit(sql: string, values: SqlValues, limitBytes: number): void {
  let total = Buffer.byteLength(sql) + PACKET_OVERHEAD_BYTES;
  let largest = -1;
  let largestBytes = -1;
  for (const [index, value] of values.entries()) {
    const bytes = typeof value === "string" ? Buffer.byteLength(value) : value === null ? 0 : 8;
    total += bytes + PER_VALUE_BYTES;
    if (bytes > largestBytes) {
      largest = index;
      largestBytes = bytes;
    }
  }
  if (total <= limitBytes) return;
  const field = parameterColumns(sql)[largest] ?? "the request";
  throw new ConnectError(
    `${field} is too large for the database: its ${largestBytes} bytes make a ${total}-byte ` +
      `statement, over the database's max_allowed_packet of ${limitBytes} bytes`,
    Code.ResourceExhausted,
  );
}

const columnCache = new Map<string, readonly (string | null)[]>();

/**
 * The column each `?` of `sql` is bound to, or null where it is not a plain
 * `column = ?` (also under COALESCE / IF) or an INSERT value of its own.
 * Our statements are a fixed set, so the answers are cached by text.
 */
export function parameterColumns(sql: string): readonly (string | null)[] {
  let columns = columnCache.get(sql);
  if (columns === undefined) {
    columns = readParameterColumns(sql);
    columnCache.set(sql, columns);
  }
  return columns;
}

function readParameterColumns(sql: string): (string | null)[] {
  const insert = /^INSERT INTO \w+ \(([^)]*)\) VALUES \((.*)\)$/s.exec(sql);
  if (insert?.[1] !== undefined && insert[2] !== undefined) {
    const names = insert[1].split(",").map((name) => name.trim());
    const items = topLevelItems(insert[2]);
    if (names.length === items.length) {
      return items.flatMap((item, i) =>
        item === "?" ? [names[i] ?? null] : Array<null>(count(item, "?")).fill(null),
      );
    }
  }
  const columns: (string | null)[] = [];
  for (let at = sql.indexOf("?"); at !== -1; at = sql.indexOf("?", at + 1)) {
    columns.push(/(\w+)\s*=\s*(?:COALESCE\(|IF\()?\s*$/.exec(sql.slice(0, at))?.[1] ?? null);
  }
  return columns;
}

/** `list` split at its commas outside parentheses and quotes. */
function topLevelItems(list: string): string[] {
  const items: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < list.length; i++) {
    const c = list[i];
    if (c === "'") quoted = !quoted;
    else if (quoted) continue;
    else if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) {
      items.push(list.slice(start, i).trim());
      start = i + 1;
    }
  }
  items.push(list.slice(start).trim());
  return items;
}

function count(text: string, char: string): number {
  return text.split(char).length - 1;
}
