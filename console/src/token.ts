/**
 * The bearer token, entered once in the token form and kept in
 * sessionStorage: it lives as long as the tab, is never put in a URL, and
 * is sent only as the Authorization header (api.ts).
 */
const KEY = "runstore.token";

/** The token of this tab, or "" when none was entered. */
export function readToken(): string {
  return sessionStorage.getItem(KEY) ?? "";
}

/** Keeps `token` for this tab; "" forgets it. */
export function saveToken(token: string): void {
  if (token === "") sessionStorage.removeItem(KEY);
  else sessionStorage.setItem(KEY, token);
}
