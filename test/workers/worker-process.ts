import { type ChildProcess, spawn } from "node:child_process";
import { EventEmitter, once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const WORKER = fileURLToPath(new URL("./worker.ts", import.meta.url));

/** One line a worker reported (see worker.ts). */
export interface WorkerEvent {
  event: string;
  worker: string;
  runId?: string;
  threadId?: string;
  [key: string]: unknown;
}

/** A worker in an OS process of its own: commands in, events out. */
export class WorkerProcess {
  readonly events: WorkerEvent[] = [];
  private readonly child: ChildProcess;
  private readonly arrived = new EventEmitter();
  readonly exited: Promise<unknown>;

  constructor(
    readonly id: string,
    storeUrl: string,
    leaseMs: number,
  ) {
    this.child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", WORKER], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? "",
        WORKER_ID: id,
        STORE_URL: storeUrl,
        LEASE_MS: `${leaseMs}`,
      },
      stdio: ["pipe", "pipe", "inherit"],
    });
    this.arrived.setMaxListeners(0);
    this.exited = once(this.child, "exit");
    if (this.child.stdout === null) throw new Error("worker has no stdout");
    createInterface({ input: this.child.stdout }).on("line", (line) => {
      const event = JSON.parse(line) as WorkerEvent;
      this.events.push(event);
      this.arrived.emit("event", event);
    });
  }

  send(command: Record<string, unknown>): void {
    this.child.stdin?.write(`${JSON.stringify(command)}\n`);
  }

  /** Resolves with the first event (already seen or still to come) that matches. */
  next(match: (event: WorkerEvent) => boolean, from = 0): Promise<WorkerEvent> {
    const seen = this.events.slice(from).find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const listener = (event: WorkerEvent) => {
        if (!match(event)) return;
        this.arrived.off("event", listener);
        resolve(event);
      };
      this.arrived.on("event", listener);
    });
  }

  /** Events of one kind so far. */
  all(event: string): WorkerEvent[] {
    return this.events.filter((e) => e.event === event);
  }

  kill(): Promise<unknown> {
    this.child.kill("SIGKILL");
    return this.exited;
  }

  async stop(): Promise<void> {
    this.child.stdin?.end();
    this.child.kill("SIGTERM");
    await this.exited;
  }
}
