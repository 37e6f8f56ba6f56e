import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";

// Starting a server process under test, shared by the bench's steps.

/** The bench's own scripts run from source through tsx. */
export const NODE = [process.execPath, "--conditions=source", "--import", "tsx"];

/** A server process under test, with its own CPU and memory accounting read from /proc. */
export interface Served {
  name: string;
  url: string;
  child: ChildProcess;
  /** What the process has printed so far (stdout and stderr). */
  output: () => string;
}

/**
 * Our server runs from the build, as `npm start` runs it; the bench's own
 * scripts run from source. `nodeFlags` are Node/V8 flags for the process.
 * Resolves once the server says where it listens.
 */
export async function serve(
  name: string,
  args: string[],
  env: Record<string, string>,
  nodeFlags: readonly string[] = [],
): Promise<Served> {
  const command = args[0]?.startsWith("dist/") ? [process.execPath] : NODE;
  const child = spawn(command[0] as string, [...nodeFlags, ...command.slice(1), ...args], {
    env: { PATH: process.env.PATH ?? "", PORT: "0", LOG_LEVEL: "info", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    const look = (chunk: Buffer) => {
      output += chunk.toString();
      const ours = /listening on (http:\/\/[^\s"]+)/.exec(output);
      const reference = /^listening (\d+)$/m.exec(output);
      if (ours?.[1]) resolve(ours[1]);
      else if (reference?.[1]) resolve(`http://127.0.0.1:${reference[1]}`);
    };
    child.stdout?.on("data", look);
    child.stderr?.on("data", look);
    child.once("exit", (code) => reject(new Error(`${name} exited ${code}: ${output}`)));
    setTimeout(() => reject(new Error(`${name} did not start in 20 s: ${output}`)), 20_000).unref();
  });
  return { name, url, child, output: () => output };
}

/** A /proc/<pid>/status field in kB (VmRSS: resident now; VmHWM: the peak), as MB. */
export function statusMb(pid: number, field: "VmRSS" | "VmHWM"): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").match(
    new RegExp(`${field}:\\s+(\\d+) kB`),
  );
  return Number(line?.[1] ?? 0) / 1024;
}
