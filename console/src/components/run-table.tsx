import type { ComponentChildren } from "preact";
import type { Run } from "../../../client/src/gen/runstore/v1/run_store_pb.js";
import { count, localTime, statusName } from "../format.js";
import { href } from "../router.js";

/** What the runs, thread and live pages show of each run, plus an optional action cell. */
export function RunTable(props: {
  runs: readonly Run[];
  caption: string;
  action?: { label: string; cell: (run: Run) => ComponentChildren };
}) {
  if (props.runs.length === 0) return <p class="empty">No runs.</p>;
  return (
    <table class="runs">
      <caption>{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">Run</th>
          <th scope="col">Thread</th>
          <th scope="col">User</th>
          <th scope="col">Model</th>
          <th scope="col">Status</th>
          <th scope="col">Created</th>
          <th scope="col">Tokens</th>
          {props.action === undefined ? null : <th scope="col">{props.action.label}</th>}
        </tr>
      </thead>
      <tbody>
        {props.runs.map((run) => (
          <tr key={run.runId} data-run-id={run.runId} data-status={statusName(run.status)}>
            <td>
              <a href={href("run", run.runId)}>{run.runId}</a>
            </td>
            <td>
              <a href={href("thread", run.threadId)}>{run.threadId}</a>
            </td>
            <td>{run.userId ?? "—"}</td>
            <td>{run.modelName ?? "—"}</td>
            <td>
              <span class={`status status-${statusName(run.status)}`}>
                {statusName(run.status)}
              </span>
            </td>
            <td>{localTime(run.createdAt)}</td>
            <td class="number">{count(run.totalTokens)}</td>
            {props.action === undefined ? null : <td>{props.action.cell(run)}</td>}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
