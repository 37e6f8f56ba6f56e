import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));

/** The server entry point run from source, as `npm start` runs the build. */
const COMMAND = [
  process.execPath,
  "--conditions=source",
  "--import",
  "tsx",
  "src/main.ts",
] as const;

/** A server in a child process, as an operator runs it. */
export interface ChildServer {
  url: string;
  child: ChildProcess;
  /** Everything the server wrote (stdout and stderr) so far. */
  stderr(): string;
  /** Sends the signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

function start(env: Record<string, string>): {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
} {
  const child = spawn(COMMAND[0], COMMAND.slice(1), {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? "", PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  child.stdout?.on("data", (chunk: Buffer) => {
    output += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once("exit", (code) => resolve(code)),
  );
  return { child, output: () => output, exited };
}

/** Starts the server and waits for its "listening on" line (at most `timeoutMs`). */
export async function spawnServer(
  env: Record<string, string>,
  timeoutMs = 20_000,
): Promise<ChildServer> {
  const { child, output, exited } = start(env);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server did not start:\n${output()}`)),
      timeoutMs,
    );
    const check = () => {
      const match = /listening on (https?:\/\/[^\s"]+)/.exec(output());
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stderr?.on("data", check);
    child.stdout?.on("data", check);
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${output()}`));
    });
  });
  return {
    url,
    child,
    stderr: output,
    async stop(signal = "SIGTERM") {
      child.kill(signal);
      return exited;
    },
  };
}

/** The JSON log lines among a server's output, parsed. */
export function logLines(output: string): { level: number; msg: string; [key: string]: unknown }[] {
  return output
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line));
}

/** Runs the server until it exits by itself; for start-up failures. */
export async function runUntilExit(
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<{ code: number | null; output: string; ms: number }> {
  const began = Date.now();
  const { child, output, exited } = start(env);
  const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
  const code = await exited;
  clearTimeout(timer);
  return { code, output: output(), ms: Date.now() - began };
}
