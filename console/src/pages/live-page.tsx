import { useState } from "preact/hooks";
import { CancelAction, type Run } from "../../../client/src/gen/runstore/v1/run_store_pb.js";
import { api } from "../api.js";
import { ErrorLine } from "../components/error-line.js";
import { RunTable } from "../components/run-table.js";
import { errorText } from "../format.js";
import { newestFirst } from "../live-runs.js";
import { LIVE_LIST_MAX, useLiveRuns } from "../use-live-runs.js";

const PHASES = {
  connecting: "Connecting…",
  live: "Live: changes appear as they happen",
  retrying: "Stream lost: reconnecting…",
} as const;

/** The pending and running runs, updated by the WatchRuns stream, each with a cancel button. */
export function LivePage() {
  const live = useLiveRuns();
  const runs = newestFirst(live.runs);
  return (
    <section aria-labelledby="live-title">
      <h1 id="live-title">Live</h1>
      <p class={`live-state live-${live.phase}`} data-live-state={live.phase} aria-live="polite">
        {PHASES[live.phase]} ({runs.length} in flight)
      </p>
      <ErrorLine error={live.error} />
      {live.truncated ? (
        <p>Listed the newest {LIVE_LIST_MAX} in-flight runs, then every change.</p>
      ) : null}
      <RunTable
        runs={runs}
        caption="Runs pending or running"
        action={{ label: "Cancel", cell: (run) => <CancelButton run={run} /> }}
      />
    </section>
  );
}

/** RequestCancel(interrupt): the owner stops the run and keeps what it did. */
function CancelButton(props: { run: Run }) {
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const requested = props.run.cancelAction !== CancelAction.UNSPECIFIED;
  const cancel = async () => {
    setBusy(true);
    setError(null);
    try {
      await api.requestCancel({ runId: props.run.runId, action: CancelAction.INTERRUPT });
    } catch (caught) {
      setError(errorText(caught));
    } finally {
      setBusy(false);
    }
  };
  if (requested) {
    const action = CancelAction[props.run.cancelAction]?.toLowerCase() ?? "requested";
    return <span data-cancel={action}>Cancel requested ({action})</span>;
  }
  return (
    <>
      <button
        type="button"
        disabled={busy}
        aria-label={`Cancel run ${props.run.runId}`}
        onClick={cancel}
      >
        Cancel
      </button>
      <ErrorLine error={error} />
    </>
  );
}
