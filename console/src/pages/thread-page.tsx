import { timestampMs } from "@bufbuild/protobuf/wkt";
import type {
  AggregateTokensByThreadResponse,
  Run,
} from "../../../client/src/gen/runstore/v1/run_store_pb.js";
import { api } from "../api.js";
import { ErrorLine } from "../components/error-line.js";
import { CallerUsageTable, ModelUsageTable } from "../components/usage-tables.js";
import { count, localTime, statusName } from "../format.js";
import { href, type Route } from "../router.js";
import { useCall } from "../use-call.js";

/** The most runs the timeline shows (one SearchRuns page). */
const TIMELINE_RUNS = 1000;

/** One thread: its runs as a timeline, oldest first, and its token usage. */
export function ThreadPage(props: { route: Route }) {
  const threadId = props.route.id;
  const result = useCall(
    async (signal) => {
      const [runs, usage] = await Promise.all([
        api.searchRuns({ threadId, pageSize: TIMELINE_RUNS }, { signal }),
        api.aggregateTokensByThread({ threadId, includeActive: true }, { signal }),
      ]);
      return { runs: [...runs.runs].reverse(), more: runs.hasMore, usage };
    },
    [threadId],
  );
  return (
    <section aria-labelledby="thread-title">
      <h1 id="thread-title">Thread {threadId}</h1>
      <ErrorLine error={result.error} />
      {result.data === null ? null : (
        <>
          <ThreadUsage usage={result.data.usage} />
          <h2>Timeline</h2>
          {result.data.more ? <p>The newest {TIMELINE_RUNS} runs.</p> : null}
          <Timeline runs={result.data.runs} />
        </>
      )}
    </section>
  );
}

function ThreadUsage(props: { usage: AggregateTokensByThreadResponse }) {
  const u = props.usage;
  const caller = u.byCaller;
  return (
    <>
      <p data-total-tokens={String(u.totalTokens)}>
        {count(u.totalTokens)} tokens ({count(u.totalInputTokens)} in, {count(u.totalOutputTokens)}{" "}
        out) over {count(u.totalRuns)} counted runs (success, error and running).
      </p>
      <div class="columns">
        <ModelUsageTable
          caption="Thread usage by model"
          columns={["Tokens", "Runs"]}
          rows={Object.entries(u.byModel).map(([model, m]) => [model, m.tokens, m.runs])}
        />
        <CallerUsageTable
          caption="Thread usage by caller"
          leadAgent={caller?.leadAgent ?? 0n}
          subagent={caller?.subagent ?? 0n}
          middleware={caller?.middleware ?? 0n}
        />
      </div>
    </>
  );
}

/** The runs oldest first, each with when it started, how long it has run and what it spent. */
function Timeline(props: { runs: readonly Run[] }) {
  if (props.runs.length === 0) return <p class="empty">No runs.</p>;
  return (
    <ol class="timeline">
      {props.runs.map((run) => (
        <li key={run.runId} data-run-id={run.runId}>
          <time>{localTime(run.createdAt)}</time>
          <a href={href("run", run.runId)}>{run.runId}</a>
          <span class={`status status-${statusName(run.status)}`}>{statusName(run.status)}</span>
          <span>{duration(run)}</span>
          <span>{count(run.totalTokens)} tokens</span>
          <span>{run.modelName ?? "no model"}</span>
        </li>
      ))}
    </ol>
  );
}

/** From created_at to its last change (updated_at), in its two largest units: "3 min 5 s", "2 d 4 h". */
function duration(run: Run): string {
  if (run.createdAt === undefined || run.updatedAt === undefined) return "";
  let seconds = Math.max(
    0,
    Math.round((timestampMs(run.updatedAt) - timestampMs(run.createdAt)) / 1000),
  );
  const parts: string[] = [];
  for (const [unit, size] of UNITS) {
    if (seconds >= size || (unit === "s" && parts.length === 0)) {
      parts.push(`${Math.floor(seconds / size)} ${unit}`);
      seconds %= size;
    }
  }
  return `last change after ${parts.slice(0, 2).join(" ")}`;
}

const UNITS = [
  ["d", 86_400],
  ["h", 3_600],
  ["min", 60],
  ["s", 1],
] as const;
