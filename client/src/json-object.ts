import type { JsonObject } from "@bufbuild/protobuf";
import { configure } from "safe-stable-stringify";
import { invalidArgument } from "./validation.js";

/**
 * The deepest nesting of objects and arrays metadata / kwargs may have: 31
 * containers, so JSON_DEPTH (which counts scalar leaves too) is at most 32,
 * MariaDB's limit. It also keeps well inside protobuf-es's limit of 100
 * nested messages, each JSON level costing two (Struct, Value) on the wire.
 */
export const MAX_JSON_DEPTH = 31;

// safe-stable-stringify (the serializer behind pino) follows JSON.stringify
// and adds the two cases JSON.stringify throws on: bigint and cycles.
const stringify = configure({
  bigint: "string",
  circularValue: "[Circular]",
  deterministic: false,
});

/** JSON.stringify unboxes Number / String / Boolean objects; safe-stable-stringify does not. */
function unbox(_key: string, value: unknown): unknown {
  if (value instanceof Number || value instanceof String || value instanceof Boolean) {
    return value.valueOf();
  }
  return value;
}

/**
 * Turns a caller's metadata / kwargs into a plain JSON object, converting
 * what JSON cannot hold the way JSON.stringify would (undefined and
 * functions dropped, NaN and Infinity as null, Date via toJSON, boxed
 * primitives unboxed) plus a bigint as its decimal string and a circular
 * reference as "[Circular]". Also a deep copy, so a caller's later mutation
 * never reaches the store. null and undefined give {}. Not an object, nested
 * deeper than MAX_JSON_DEPTH, or a key "__proto__" (which JavaScript objects
 * cannot carry safely across the wire) is InvalidArgument naming `field`.
 */
export function toJsonObject(field: string, value: unknown): JsonObject {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw invalidArgument(field, `must be a JSON object, got ${describe(value)}`);
  }
  const parsed: unknown = JSON.parse(stringify(value, unbox) ?? "null");
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw invalidArgument(field, `must be a JSON object, got ${describe(parsed)}`);
  }
  checkShape(field, parsed, 1);
  return parsed as JsonObject;
}

function checkShape(field: string, value: object, depth: number): void {
  if (depth > MAX_JSON_DEPTH) {
    throw invalidArgument(field, `must not nest deeper than ${MAX_JSON_DEPTH} levels`);
  }
  if (!Array.isArray(value) && Object.hasOwn(value, "__proto__")) {
    throw invalidArgument(field, 'must not have a key named "__proto__"');
  }
  for (const child of Object.values(value)) {
    if (child !== null && typeof child === "object") checkShape(field, child, depth + 1);
  }
}

function describe(value: unknown): string {
  return Array.isArray(value) ? "an array" : value === null ? "null" : typeof value;
}
