import { readFileSync } from "node:fs";

let cached: string | undefined;

/**
 * The server's version, from the package.json beside src/ and dist/ alike
 * (both sit one level below it), so a build and a source run report the
 * same. Read once, on first use rather than at import.
 */
export function serverVersion(): string {
  cached ??= (
    JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
      version: string;
    }
  ).version;
  return cached;
}
