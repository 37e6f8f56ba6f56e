import { useEffect, useState } from "preact/hooks";
import { api } from "../api.js";
import { ErrorLine } from "../components/error-line.js";
import { RunTable } from "../components/run-table.js";
import { STATUSES, statusName } from "../format.js";
import { href, type Route } from "../router.js";
import {
  filtersOf,
  PAGE_SIZES,
  queryOf,
  type SearchFilters,
  searchRequest,
} from "../search-filters.js";
import { useCall } from "../use-call.js";

/** Runs across threads (SearchRuns), filtered, in keyset pages with next and previous. */
export function RunsPage(props: { route: Route }) {
  const filters = filtersOf(props.route.query);
  const key = JSON.stringify(filters);
  // The token of every page visited so far; tokens[0] is the first page's "".
  const [pages, setPages] = useState({ key, tokens: [""], index: 0 });
  useEffect(() => setPages({ key, tokens: [""], index: 0 }), [key]);
  const token = pages.key === key ? (pages.tokens[pages.index] ?? "") : "";
  const index = pages.key === key ? pages.index : 0;
  const result = useCall(
    (signal) => api.searchRuns(searchRequest(filters, token), { signal }),
    [key, token],
  );
  const next = result.data?.hasMore ? result.data.nextPageToken : "";
  return (
    <section aria-labelledby="runs-title">
      <h1 id="runs-title">Runs</h1>
      <FilterForm filters={filters} />
      <ErrorLine error={result.error} />
      <RunTable runs={result.data?.runs ?? []} caption={`Page ${index + 1}`} />
      <nav class="pager" aria-label="Result pages">
        <button
          type="button"
          disabled={index === 0 || result.loading}
          onClick={() => setPages({ key, tokens: pages.tokens, index: index - 1 })}
        >
          Previous page
        </button>
        <span aria-live="polite" data-page={index + 1}>
          Page {index + 1}
        </span>
        <button
          type="button"
          disabled={next === "" || result.loading}
          onClick={() =>
            setPages({ key, tokens: [...pages.tokens.slice(0, index + 1), next], index: index + 1 })
          }
        >
          Next page
        </button>
      </nav>
    </section>
  );
}

/** The search form; submitting it puts the filters in the URL hash. */
function FilterForm(props: { filters: SearchFilters }) {
  const onSubmit = (event: Event) => {
    event.preventDefault();
    const form = new FormData(event.currentTarget as HTMLFormElement);
    const text = (name: string) => String(form.get(name) ?? "").trim();
    const filters: SearchFilters = {
      user: text("user"),
      thread: text("thread"),
      model: text("model"),
      statuses: form.getAll("status").map(String),
      from: text("from"),
      to: text("to"),
      size: text("size"),
    };
    window.location.hash = href("runs", "", queryOf(filters));
  };
  const f = props.filters;
  return (
    <form class="filters" onSubmit={onSubmit} key={JSON.stringify(f)}>
      <label>
        User
        <input name="user" type="text" defaultValue={f.user} autoComplete="off" />
      </label>
      <label>
        Thread
        <input name="thread" type="text" defaultValue={f.thread} autoComplete="off" />
      </label>
      <label>
        Model
        <input name="model" type="text" defaultValue={f.model} autoComplete="off" />
      </label>
      <label>
        Created from
        <input name="from" type="date" defaultValue={f.from} />
      </label>
      <label>
        Created to
        <input name="to" type="date" defaultValue={f.to} />
      </label>
      <label>
        Page size
        {/* `selected` on the option: a select element has no defaultValue property to set. */}
        <select name="size">
          {PAGE_SIZES.map((size) => (
            <option key={size} value={size} selected={size === f.size}>
              {size}
            </option>
          ))}
        </select>
      </label>
      <fieldset>
        <legend>Statuses</legend>
        {STATUSES.map((status) => (
          <label key={status} class="check">
            <input
              type="checkbox"
              name="status"
              value={statusName(status)}
              defaultChecked={f.statuses.includes(statusName(status))}
            />
            {statusName(status)}
          </label>
        ))}
      </fieldset>
      <div class="actions">
        <button type="submit">Search</button>
        <a href={href("runs")}>Clear filters</a>
      </div>
    </form>
  );
}
