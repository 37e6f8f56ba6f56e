import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

// protobuf-es has one text codec per process. Importing the SDK must leave it
// alone ("sideEffects": false); the explicit call, and RemoteRunStore's
// constructor which makes it, keep a leading U+FEFF. Each case runs in a
// process of its own, so no other test's call can have configured it first.

const run = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));
const fixture = fileURLToPath(new URL("./fixtures/byte-order-mark.ts", import.meta.url));

async function decodeIn(
  step: "call" | "store",
): Promise<{ afterImport: string; afterCall: string }> {
  const args = ["--conditions=source", "--import", "tsx", fixture, step];
  const { stdout } = await run(process.execPath, args, { cwd: root });
  return JSON.parse(stdout);
}

describe("byte order marks in decoded strings", () => {
  it("importing the SDK changes nothing; keepByteOrderMarks() keeps U+FEFF", async () => {
    expect(await decodeIn("call")).toEqual({ afterImport: "r1", afterCall: "\uFEFFr1" });
  });

  it("constructing a RemoteRunStore keeps U+FEFF for its answers", async () => {
    expect(await decodeIn("store")).toEqual({ afterImport: "r1", afterCall: "\uFEFFr1" });
  });
});
