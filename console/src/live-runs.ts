import { timestampMs } from "@bufbuild/protobuf/wkt";
import {
  type Run,
  type RunChange,
  RunChangeKind,
} from "../../client/src/gen/runstore/v1/run_store_pb.js";

/** The in-flight runs the live page shows, by run id. */
export type LiveRuns = ReadonlyMap<string, Run>;

/**
 * The runs after one change of the stream: a run that left the filter (it
 * finished) or was deleted goes, any other change puts its row in.
 */
export function applyChange(runs: LiveRuns, change: RunChange): LiveRuns {
  const run = change.run;
  if (run === undefined) return runs;
  const next = new Map(runs);
  if (change.leftFilter || change.kind === RunChangeKind.DELETED) next.delete(run.runId);
  else next.set(run.runId, run);
  return next;
}

/** The runs newest first (created_at, then run_id), as SearchRuns lists them. */
export function newestFirst(runs: LiveRuns): Run[] {
  const created = (run: Run) => (run.createdAt === undefined ? 0 : timestampMs(run.createdAt));
  return [...runs.values()].sort(
    (a, b) => created(b) - created(a) || (a.runId < b.runId ? 1 : a.runId > b.runId ? -1 : 0),
  );
}
