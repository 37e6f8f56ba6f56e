import { configureTextEncoding, getTextEncoding } from "@bufbuild/protobuf/wire";

// protobuf-es decodes strings with a default TextDecoder, which drops a
// leading U+FEFF (byte order mark): "\uFEFFr1" would arrive as "r1" and
// overwrite or read another run. Both ends must decode with ignoreBOM.

const lenient = new TextDecoder("utf-8", { ignoreBOM: true });
const strict = new TextDecoder("utf-8", { ignoreBOM: true, fatal: true });
let kept = false;

/**
 * Makes protobuf-es keep a leading U+FEFF in every string it decodes, for the
 * whole process (protobuf-es has one text codec per process; nothing else
 * changes: encoding and UTF-8 checking stay protobuf-es's own). Importing the
 * SDK never calls it; `RemoteRunStore`'s constructor and the server's start
 * do, because a run id that starts with a BOM must reach the store unchanged.
 * Idempotent.
 */
export function keepByteOrderMarks(): void {
  if (kept) return;
  const base = getTextEncoding();
  configureTextEncoding({
    checkUtf8: base.checkUtf8,
    encodeUtf8: base.encodeUtf8,
    decodeUtf8: (bytes, strictMode) => (strictMode ? strict : lenient).decode(bytes),
  });
  kept = true;
}
