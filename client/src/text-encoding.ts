import { configureTextEncoding, getTextEncoding } from "@bufbuild/protobuf/wire";

// protobuf-es decodes strings with a default TextDecoder, which drops a
// leading U+FEFF (byte order mark): "\uFEFFr1" would arrive as "r1" and
// overwrite another run. Decode with ignoreBOM instead, keeping every code
// point, on both the client and the server (which imports this package).

const lenient = new TextDecoder("utf-8", { ignoreBOM: true });
const strict = new TextDecoder("utf-8", { ignoreBOM: true, fatal: true });
const base = getTextEncoding();

configureTextEncoding({
  checkUtf8: base.checkUtf8,
  encodeUtf8: base.encodeUtf8,
  decodeUtf8: (bytes, strictMode) => (strictMode ? strict : lenient).decode(bytes),
});
