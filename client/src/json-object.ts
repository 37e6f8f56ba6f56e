import type { JsonObject } from "@bufbuild/protobuf";
import { configure } from "safe-stable-stringify";
import { invalidArgument } from "./validation.js";

// safe-stable-stringify (the serializer behind pino) follows JSON.stringify
// exactly and adds the two cases JSON.stringify throws on: bigint and cycles.
const stringify = configure({
  bigint: "string",
  circularValue: "[Circular]",
  deterministic: false,
});

/**
 * Turns a caller's metadata / kwargs into a plain JSON object, converting
 * what JSON cannot hold the way JSON.stringify would (undefined and
 * functions dropped, NaN and Infinity as null, Date via toJSON) plus a bigint
 * as its decimal string and a circular reference as "[Circular]". Also a
 * deep copy, so a caller's later mutation never reaches the store. null and
 * undefined give {}; anything that is not an object is InvalidArgument.
 */
export function toJsonObject(field: string, value: unknown): JsonObject {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw invalidArgument(field, `must be a JSON object, got ${describe(value)}`);
  }
  const parsed: unknown = JSON.parse(stringify(value) ?? "null");
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw invalidArgument(field, `must be a JSON object, got ${describe(parsed)}`);
  }
  return parsed as JsonObject;
}

function describe(value: unknown): string {
  return Array.isArray(value) ? "an array" : value === null ? "null" : typeof value;
}
