import { useState } from "preact/hooks";
import { TokenForm } from "./components/token-form.js";
import { LivePage } from "./pages/live-page.js";
import { RunPage } from "./pages/run-page.js";
import { RunsPage } from "./pages/runs-page.js";
import { ThreadPage } from "./pages/thread-page.js";
import { UsagePage } from "./pages/usage-page.js";
import { href, type Route, useRoute } from "./router.js";
import { readToken } from "./token.js";

const NAV = [
  ["runs", "Runs"],
  ["live", "Live"],
  ["usage", "Usage"],
] as const;

/** The console: navigation, the token form, and the page of the URL hash. */
export function App() {
  const route = useRoute();
  const [token, setToken] = useState(readToken);
  return (
    <>
      <header>
        <p class="brand">RunStore console</p>
        <nav aria-label="Pages">
          <ul>
            {NAV.map(([page, label]) => (
              <li key={page}>
                <a href={href(page)} aria-current={route.page === page ? "page" : undefined}>
                  {label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <TokenForm token={token} onChange={setToken} />
      </header>
      <main id="main" key={token ?? ""}>
        {token === null ? (
          <section aria-labelledby="token-title">
            <h1 id="token-title">Sign in</h1>
            <p>
              Enter the bearer token this server gave you in the form above (kept for this tab
              only), or continue without one.
            </p>
          </section>
        ) : (
          <Page route={route} />
        )}
      </main>
    </>
  );
}

function Page(props: { route: Route }) {
  switch (props.route.page) {
    case "run":
      return <RunPage route={props.route} />;
    case "thread":
      return <ThreadPage route={props.route} />;
    case "live":
      return <LivePage />;
    case "usage":
      return <UsagePage route={props.route} />;
    case "runs":
      return <RunsPage route={props.route} />;
    default:
      return <p>No such page.</p>;
  }
}
