import { useEffect, useRef } from "preact/hooks";
import uPlot from "uplot";
import { count, localDate } from "../format.js";
import { daySeconds, type UsageSeries } from "../usage-series.js";

/** A day in seconds, uPlot's time unit. */
const DAY = 86_400;

/** Line colours, one a model in turn; readable on the page's white. */
const COLOURS = ["#1f5fbf", "#b3261e", "#1b7a3a", "#8a4f00", "#6a3fb5", "#00707a"];

/**
 * Tokens per day by model as a uPlot line chart (days on the browser's
 * local time axis). The series it draws are also in `data-series` and in the
 * table beside it, for readers without the canvas and for tests.
 */
export function UsageChart(props: { series: UsageSeries }) {
  const target = useRef<HTMLDivElement>(null);
  const { dates, models, tokens } = props.series;
  useEffect(() => {
    if (target.current === null || dates.length === 0) return undefined;
    const chart = new uPlot(
      {
        width: Math.min(900, target.current.clientWidth || 900),
        height: 320,
        scales: { x: { time: true } },
        series: [
          { label: "Day" },
          ...models.map((model, i) => ({
            label: model,
            stroke: COLOURS[i % COLOURS.length],
            width: 2,
            points: { show: true, size: 6 },
            value: (_: uPlot, v: number | null) => (v === null ? "—" : count(v)),
          })),
        ],
        axes: [
          {
            // Whole local days: a tick a day (or a week, a month when they crowd).
            incrs: [DAY, 7 * DAY, 30 * DAY],
            values: (_: uPlot, ticks: number[]) =>
              ticks.map((t) => localDate(new Date(t * 1000)).slice(5)),
          },
          { size: 70, values: (_: uPlot, ticks: number[]) => ticks.map((t) => count(t)) },
        ],
      },
      [daySeconds(dates), ...tokens],
      target.current,
    );
    return () => chart.destroy();
  }, [dates, models, tokens]);
  return (
    <figure class="chart">
      <div
        ref={target}
        role="img"
        aria-label={`Tokens per day by model, ${dates.length} days`}
        data-series={JSON.stringify({ dates, models, tokens })}
      />
      <figcaption>Tokens per day by model (days in your time zone)</figcaption>
      <UsageTable series={props.series} />
    </figure>
  );
}

/** The chart's numbers as a table: a row a day, a column a model. */
function UsageTable(props: { series: UsageSeries }) {
  const { dates, models, tokens } = props.series;
  return (
    <table class="usage">
      <caption>Tokens per day by model</caption>
      <thead>
        <tr>
          <th scope="col">Day</th>
          {models.map((model) => (
            <th scope="col" key={model}>
              {model}
            </th>
          ))}
        </tr>
      </thead>
      <tbody>
        {dates.map((date, d) => (
          <tr key={date} data-date={date}>
            <th scope="row">{date}</th>
            {models.map((model, m) => (
              <td class="number" key={model} data-model={model}>
                {count(tokens[m]?.[d] ?? 0)}
              </td>
            ))}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
