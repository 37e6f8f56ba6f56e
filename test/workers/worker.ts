// One worker process of the multi-worker test (workers.test.ts): a small
// agent-runtime loop on RemoteRunStore's coordination methods. It reads
// commands as JSON lines on stdin and reports what happened as JSON lines on
// stdout; the test decides what to do and audits the database itself.
//
//   WORKER_ID   this worker's owner id
//   STORE_URL   the server replica it talks to
//   LEASE_MS    the lease it asks for (relative: the store's clock)
//
// Commands:
//   {"cmd":"admit","runId","threadId","strategy"}  admit, start, then hold the
//       run: renew the lease every LEASE_MS/3 (seeing cancels), one progress
//       snapshot per renewal, until "finish" or a cancel
//   {"cmd":"finish","runId"}    finalize the held run as success unless cancelled
//   {"cmd":"reap","graceSeconds"}   take over every run whose lease expired
//   {"cmd":"claim"}             claim queued runs and run each to success until none is left
import { createInterface } from "node:readline";
import { setTimeout as delay } from "node:timers/promises";
import { Code, ConnectError, type MultitaskStrategy, RemoteRunStore } from "@runstore/client";

const workerId = process.env.WORKER_ID ?? "worker";
const leaseMs = Number(process.env.LEASE_MS ?? "3000");
const store = new RemoteRunStore({ baseUrl: process.env.STORE_URL ?? "", timeoutMs: 10_000 });
const lease = { durationMs: leaseMs };

/** Runs this worker holds, each with a way to end its renewal loop. */
const held = new Map<string, { finish: () => void; done: Promise<void> }>();

function report(event: string, fields: Record<string, unknown> = {}): void {
  process.stdout.write(`${JSON.stringify({ event, worker: workerId, ...fields })}\n`);
}

/** Renews the lease at a third of its length until finished or cancelled. */
async function hold(runId: string, finished: Promise<void>): Promise<void> {
  let ended = false;
  finished.then(() => {
    ended = true;
  });
  for (let snapshot = 1; !ended; snapshot++) {
    // The runtime's own cadence (a third of the lease), not a test's wait.
    await Promise.race([delay(leaseMs / 3), finished]);
    if (ended) break;
    const renewal = await store.renewLease(runId, workerId, lease);
    if (!renewal.renewed) return report("lost", { runId });
    if (renewal.cancelAction !== null) {
      const stopped = await store.updateStatus(runId, "interrupted", {
        guarded: true,
        stopReason: `cancel_${renewal.cancelAction}`,
      });
      return report("cancelled", { runId, action: renewal.cancelAction, stopped });
    }
    await store.updateRunProgress(runId, { totalTokens: snapshot, llmCallCount: snapshot });
  }
  const result = await store.finalizeIfNotCancelled(runId, "success");
  // A cancel recorded first wins the race: the owner stops the run itself.
  if (!result.finalized && result.cancelAction !== null) {
    await store.updateStatus(runId, "interrupted", { guarded: true, stopReason: "cancelled" });
  }
  report("finalized", { runId, ...result });
}

async function admit(runId: string, threadId: string, strategy: MultitaskStrategy) {
  try {
    const admission = await store.createThreadOperation(runId, {
      threadId,
      ownerWorkerId: workerId,
      lease,
      multitaskStrategy: strategy,
    });
    report("admitted", { runId, threadId, takenOver: admission.takenOver.map((r) => r.runId) });
  } catch (error) {
    const code = ConnectError.from(error).code;
    return report(code === Code.Aborted ? "conflict" : "failed", { runId, threadId, code });
  }
  if (!(await store.startRun(runId))) return report("not-started", { runId });
  let finish = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  held.set(runId, { finish, done: hold(runId, finished) });
  report("started", { runId, threadId });
}

async function reap(graceSeconds: number) {
  for (const run of await store.listInflightWithExpiredLease({ graceSeconds })) {
    const claimed = await store.claimForTakeover(run.runId, {
      graceSeconds,
      error: `owner ${run.ownerWorkerId} lost its lease`,
      stopReason: "orphan_recovered",
    });
    if (claimed) report("took-over", { runId: run.runId, owner: run.ownerWorkerId });
  }
  report("reaped");
}

async function claimAll() {
  for (;;) {
    const run = await store.claimNextRun(workerId, lease);
    if (run === null) break;
    report("claimed", { runId: run.runId, threadId: run.threadId, at: run.updatedAt });
    await store.updateRunProgress(run.runId, { totalTokens: 1 });
    const result = await store.finalizeIfNotCancelled(run.runId, "success");
    report("finalized", { runId: run.runId, ...result });
  }
  report("drained");
}

type Command =
  | { cmd: "admit"; runId: string; threadId: string; strategy: MultitaskStrategy }
  | { cmd: "finish"; runId: string }
  | { cmd: "reap"; graceSeconds: number }
  | { cmd: "claim" };

async function execute(command: Command): Promise<void> {
  switch (command.cmd) {
    case "admit":
      return admit(command.runId, command.threadId, command.strategy);
    case "finish": {
      const run = held.get(command.runId);
      run?.finish();
      await run?.done;
      return;
    }
    case "reap":
      return reap(command.graceSeconds);
    case "claim":
      return claimAll();
  }
}

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  execute(JSON.parse(line) as Command).catch((error: unknown) => {
    report("error", { message: String(error), line });
  });
});
lines.on("close", () => store.close());
report("ready");
