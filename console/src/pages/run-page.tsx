import { type JsonValue, toJson } from "@bufbuild/protobuf";
import { type Run, RunSchema } from "../../../client/src/gen/runstore/v1/run_store_pb.js";
import { api } from "../api.js";
import { ErrorLine } from "../components/error-line.js";
import { CallerUsageTable, ModelUsageTable } from "../components/usage-tables.js";
import { localTime } from "../format.js";
import { href, type Route } from "../router.js";
import { useCall } from "../use-call.js";

/** One run (Get): every field of the row, and its token usage by model and by caller. */
export function RunPage(props: { route: Route }) {
  const runId = props.route.id;
  const result = useCall((signal) => api.get({ runId }, { signal }), [runId]);
  const run = result.data?.run;
  return (
    <section aria-labelledby="run-title">
      <h1 id="run-title">Run {runId}</h1>
      <ErrorLine error={result.error} />
      {result.data !== null && run === undefined ? <p class="empty">No such run.</p> : null}
      {run === undefined ? null : <RunDetails run={run} />}
    </section>
  );
}

function RunDetails(props: { run: Run }) {
  const run = props.run;
  const usage = Object.entries(run.tokenUsageByModel).map(
    ([model, u]) =>
      [model, u.inputTokens, u.outputTokens, u.totalTokens, u.cacheReadTokens ?? 0n] as [
        string,
        ...bigint[],
      ],
  );
  return (
    <>
      <p>
        Thread <a href={href("thread", run.threadId)}>{run.threadId}</a>; created{" "}
        {localTime(run.createdAt)}, updated {localTime(run.updatedAt)} (your time zone).
      </p>
      <div class="columns">
        <ModelUsageTable
          caption="Token usage by model"
          columns={["Input", "Output", "Total", "Cache read"]}
          rows={usage}
        />
        <CallerUsageTable
          caption="Token usage by caller"
          leadAgent={run.leadAgentTokens}
          subagent={run.subagentTokens}
          middleware={run.middlewareTokens}
        />
      </div>
      <FieldList run={run} />
    </>
  );
}

/** Every field of the Run message, by its wire name, in the proto's order. */
function FieldList(props: { run: Run }) {
  const json = toJson(RunSchema, props.run, { alwaysEmitImplicit: true }) as Record<
    string,
    JsonValue
  >;
  return (
    <table class="fields">
      <caption>Every field</caption>
      <tbody>
        {RunSchema.fields.map((field) => (
          <tr key={field.name} data-field={field.name}>
            <th scope="row">{field.name}</th>
            <td>{shown(json[field.jsonName])}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** A field's JSON value as text: strings as they are, unset as "—", the rest as JSON. */
function shown(value: JsonValue | undefined): string {
  if (value === undefined || value === null) return "—";
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}
