import { toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { RunRecord, RunStore } from "@runstore/client";
import { pb, runToProto } from "@runstore/client/internal";

/** Bytes mapped between two yields to the event loop. */
const SLICE_BYTES = 1024 * 1024;

/**
 * The largest answer the server builds. Runs are counted in protobuf bytes
 * as they are mapped, and the mapping stops as soon as the budget is
 * passed: an answer that would be too large is RESOURCE_EXHAUSTED before it
 * is built or sent, and the mapping yields to the event loop every MiB, so
 * a large answer never holds up other calls (or their deadlines) for long.
 */
export class ResponseBudget {
  constructor(readonly maxBytes: number) {}

  /** A list answer (every message that lists runs has this shape). */
  async runs(records: readonly RunRecord[]): Promise<{ runs: pb.Run[] }> {
    return { runs: await this.map(records) };
  }

  /** A map answer keyed by run id (get_many_by_thread). */
  async runMap(found: Record<string, RunRecord>): Promise<{ runs: Record<string, pb.Run> }> {
    const entries = Object.entries(found);
    const mapped = await this.map(entries.map(([, run]) => run));
    // fromEntries defines own properties: no run id can reach a prototype.
    return { runs: Object.fromEntries(entries.map(([id], i) => [id, mapped[i] as pb.Run])) };
  }

  private async map(records: readonly RunRecord[]): Promise<pb.Run[]> {
    const out: pb.Run[] = [];
    let total = 0;
    let slice = 0;
    for (const record of records) {
      const run = runToProto(record);
      // The run's bytes plus its field tag and length prefix in the answer.
      const size = toBinary(pb.RunSchema, run).length + 6;
      total += size;
      if (total > this.maxBytes) throw this.exhausted(records.length);
      out.push(run);
      slice += size;
      if (slice >= SLICE_BYTES) {
        slice = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    return out;
  }

  private exhausted(count: number): ConnectError {
    return responseExhausted(count, this.maxBytes);
  }
}

/** The answer of a call whose `count` runs are over `maxBytes`; stores that refuse before reading use it too. */
export function responseExhausted(count: number, maxBytes: number): ConnectError {
  return new ConnectError(
    `the answer (${count} runs) is over the server's response budget of ${maxBytes} bytes (MAX_RESPONSE_BYTES): ask for fewer runs`,
    Code.ResourceExhausted,
  );
}

/**
 * A store that can refuse a list answer over the budget before it reads
 * the rows (MysqlRunStore): the service gives each call's view the budget.
 */
export interface HonoursResponseBudget {
  withResponseBudget(maxBytes: number): RunStore;
}

export function honoursResponseBudget(store: RunStore): store is RunStore & HonoursResponseBudget {
  return typeof (store as Partial<HonoursResponseBudget>).withResponseBudget === "function";
}
