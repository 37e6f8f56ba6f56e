import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { useMemo } from "preact/hooks";
import { api } from "../api.js";
import { ErrorLine } from "../components/error-line.js";
import { UsageChart } from "../components/usage-chart.js";
import { ModelUsageTable } from "../components/usage-tables.js";
import { count, localDate, localMidnight, utcOffset } from "../format.js";
import { href, type Route } from "../router.js";
import { usageSeries } from "../usage-series.js";
import { useCall } from "../use-call.js";

/** Days shown when the range is not given: the last 14, today included. */
const DEFAULT_DAYS = 14;

/**
 * Usage over a range of local days (GetRunStats with the browser's offset
 * from UTC): runs, tokens by model, and tokens per day by model as a chart.
 */
export function UsagePage(props: { route: Route }) {
  const today = localDate(new Date());
  const from = props.route.query.get("from") || localDate(localMidnight(today, 1 - DEFAULT_DAYS));
  const to = props.route.query.get("to") || today;
  const result = useCall(
    (signal) => {
      const start = localMidnight(from);
      return api.getRunStats(
        {
          createdAfter: timestampFromDate(start),
          createdBefore: timestampFromDate(localMidnight(to, 1)),
          // The offset at the range's start; a daylight-saving change within
          // the range moves that part's day bounds by the hour it changes.
          utcOffset: utcOffset(start),
        },
        { signal },
      );
    },
    [from, to],
  );
  const stats = result.data;
  const series = useMemo(() => usageSeries(stats?.days ?? [], from, to), [stats, from, to]);
  return (
    <section aria-labelledby="usage-title">
      <h1 id="usage-title">Usage</h1>
      <RangeForm from={from} to={to} />
      <ErrorLine error={result.error} />
      {stats === null ? null : (
        <>
          <p data-total-runs={String(stats.totalRuns)}>
            {count(stats.totalRuns)} runs, {count(stats.tokens?.totalTokens ?? 0n)} tokens,{" "}
            {count(stats.activeRuns)} active, {count(stats.failedRuns)} failed, from {from} to {to}{" "}
            (UTC{utcOffset(localMidnight(from))}).
          </p>
          {stats.totalRuns === 0n ? (
            <p class="empty">No runs in this range.</p>
          ) : (
            <UsageChart series={series} />
          )}
          <ModelUsageTable
            caption="Tokens by model over the range"
            columns={["Runs", "Input", "Output", "Total"]}
            rows={Object.entries(stats.byModel).map(([model, t]) => [
              model,
              t.runs,
              t.inputTokens,
              t.outputTokens,
              t.totalTokens,
            ])}
          />
        </>
      )}
    </section>
  );
}

/** From and to dates; submitting puts them in the URL hash. */
function RangeForm(props: { from: string; to: string }) {
  const onSubmit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    window.location.hash = href("usage", "", {
      from: String(form.get("from") ?? ""),
      to: String(form.get("to") ?? ""),
    });
  };
  return (
    <form class="filters" onSubmit={onSubmit} key={`${props.from}/${props.to}`}>
      <label>
        From
        <input name="from" type="date" defaultValue={props.from} required />
      </label>
      <label>
        To
        <input name="to" type="date" defaultValue={props.to} required />
      </label>
      <div class="actions">
        <button type="submit">Show</button>
      </div>
    </form>
  );
}
