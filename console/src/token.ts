/**
 * The bearer token, entered once in the token form and kept in
 * sessionStorage: it lives as long as the tab, is never put in a URL, and
 * is sent only as the Authorization header (api.ts).
 */
const KEY = "runstore.token";

/** The token of this tab; "" when the server needs none; null when not asked yet. */
export function readToken(): string | null {
  return sessionStorage.getItem(KEY);
}

/** Keeps `token` ("" for none) for this tab; null forgets it, so the form asks again. */
export function saveToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(KEY);
  else sessionStorage.setItem(KEY, token);
}
