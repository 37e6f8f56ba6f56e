import { useEffect, useState } from "preact/hooks";

/** Where the page is: `#/<page>/<id>?<query>`, e.g. `#/run/r1` or `#/runs?user=u1`. */
export interface Route {
  page: string;
  id: string;
  query: URLSearchParams;
}

/** The route of a location hash; an empty hash is the runs page. */
export function parseRoute(hash: string): Route {
  const [path = "", search = ""] = hash.replace(/^#\/?/, "").split("?", 2);
  const [page = "", ...rest] = path.split("/");
  return {
    page: page === "" ? "runs" : page,
    id: decodeURIComponent(rest.join("/")),
    query: new URLSearchParams(search),
  };
}

/** The hash of a page, an id and query values (empty values left out). */
export function href(page: string, id = "", query: Record<string, string> = {}): string {
  const search = new URLSearchParams(Object.entries(query).filter(([, value]) => value !== ""));
  const text = search.toString();
  return `#/${page}${id === "" ? "" : `/${encodeURIComponent(id)}`}${text === "" ? "" : `?${text}`}`;
}

/** The current route, following hash changes (back and forward included). */
export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(window.location.hash));
  useEffect(() => {
    const follow = () => setRoute(parseRoute(window.location.hash));
    window.addEventListener("hashchange", follow);
    return () => window.removeEventListener("hashchange", follow);
  }, []);
  return route;
}
