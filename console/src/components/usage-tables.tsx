import { count } from "../format.js";

/** Token usage per model: one row a model, with the numbers given for it. */
export function ModelUsageTable(props: {
  caption: string;
  columns: readonly string[];
  rows: readonly [string, ...(bigint | number)[]][];
}) {
  if (props.rows.length === 0) return <p class="empty">{props.caption}: none recorded.</p>;
  return (
    <table class="usage">
      <caption>{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">Model</th>
          {props.columns.map((name) => (
            <th scope="col" key={name}>
              {name}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {props.rows.map(([model, ...values]) => (
          <tr key={model} data-model={model}>
            <th scope="row">{model}</th>
            {values.map((value, i) => (
              <td class="number" key={props.columns[i]}>
                {count(value)}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}

/** Token usage by who spent it: the lead agent, subagents, middleware. */
export function CallerUsageTable(props: {
  caption: string;
  leadAgent: bigint;
  subagent: bigint;
  middleware: bigint;
}) {
  const rows: [string, string, bigint][] = [
    ["lead_agent", "Lead agent", props.leadAgent],
    ["subagent", "Subagents", props.subagent],
    ["middleware", "Middleware", props.middleware],
  ];
  return (
    <table class="usage">
      <caption>{props.caption}</caption>
      <thead>
        <tr>
          <th scope="col">Caller</th>
          <th scope="col">Tokens</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(([key, label, value]) => (
          <tr key={key} data-caller={key}>
            <th scope="row">{label}</th>
            <td class="number">{count(value)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
