import { Code, ConnectError } from "@connectrpc/connect";
import { useEffect, useState } from "preact/hooks";
import { RunStatus } from "../../client/src/gen/runstore/v1/run_store_pb.js";
import { api } from "./api.js";
import { errorText } from "./format.js";
import { applyChange, type LiveRuns } from "./live-runs.js";

/** The most in-flight runs listed when the stream opens (one SearchRuns page). */
export const LIVE_LIST_MAX = 1000;

/** How the live stream is doing: connecting, live (open and listed), or retrying after an error. */
export interface LiveState {
  phase: "connecting" | "live" | "retrying";
  runs: LiveRuns;
  /** The last error, while retrying. */
  error: string | null;
  /** More in-flight runs than the first list held. */
  truncated: boolean;
}

/**
 * The pending and running runs, kept current by WatchRuns(active_only):
 * open the stream, take the first message's cursor, list the in-flight runs,
 * then apply every change after that cursor — nothing is missed between the
 * list and the stream. A broken stream resumes from the last cursor after a
 * short wait; a cursor the server no longer knows (OUT_OF_RANGE) starts over.
 */
export function useLiveRuns(): LiveState {
  const [state, setState] = useState<LiveState>({
    phase: "connecting",
    runs: new Map(),
    error: null,
    truncated: false,
  });
  useEffect(() => {
    const abort = new AbortController();
    follow(abort.signal, setState);
    return () => abort.abort();
  }, []);
  return state;
}

type SetState = (update: (was: LiveState) => LiveState) => void;

async function follow(signal: AbortSignal, setState: SetState): Promise<void> {
  let cursor = "";
  let failures = 0;
  while (!signal.aborted) {
    // A stream the server ends without an error is resumed like a broken one.
    let error: unknown = new ConnectError("the stream ended", Code.Unavailable);
    try {
      let first = true;
      for await (const message of api.watchRuns({ activeOnly: true, cursor }, { signal })) {
        if (first && cursor === "") await listInflight(signal, setState);
        else if (first) setState((was) => ({ ...was, phase: "live", error: null }));
        first = false;
        failures = 0;
        cursor = message.cursor;
        const change = message.change;
        if (change !== undefined) {
          setState((was) => ({ ...was, runs: applyChange(was.runs, change) }));
        }
      }
    } catch (caught) {
      error = caught;
    }
    if (signal.aborted) return;
    failures += 1;
    setState((was) => ({ ...was, phase: "retrying", error: errorText(error) }));
    // A cursor the server does not know (its change log restarted): list
    // again from now, at once the first time.
    const unknownCursor = ConnectError.from(error).code === Code.OutOfRange;
    if (unknownCursor) cursor = "";
    if (!unknownCursor || failures > 2) {
      await pause(Math.min(30_000, 250 * 2 ** Math.min(failures, 7)), signal);
    }
  }
}

/** Lists the in-flight runs and shows them as the live set. */
async function listInflight(signal: AbortSignal, setState: SetState): Promise<void> {
  const page = await api.searchRuns(
    { statuses: [RunStatus.PENDING, RunStatus.RUNNING], pageSize: LIVE_LIST_MAX },
    { signal },
  );
  setState(() => ({
    phase: "live",
    runs: new Map(page.runs.map((run) => [run.runId, run])),
    error: null,
    truncated: page.hasMore,
  }));
}

/** Waits `ms` before the next attempt, or until the page is left. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
