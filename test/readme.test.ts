import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { SETTINGS } from "../src/config.js";

// The README's configuration table and opening commands stay true.

const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");

describe("README", () => {
  it("lists every setting with its default, in the order --help does", () => {
    const rows = readme.split("\n").filter((line) => /^\| `[A-Z_]+` \|/.test(line));
    expect(rows).toEqual(
      SETTINGS.map(
        ([name, fallback, meaning]) =>
          `| \`${name}\` | ${fallback === "(unset)" ? "unset" : `\`${fallback}\``} | ${meaning} |`,
      ),
    );
  });

  it("opens with the install-and-start command and the test command", () => {
    const opening = readme.split("\n").slice(0, 6).join("\n");
    expect(opening).toContain("npm ci && npm start");
    expect(opening).toContain("npm test");
  });
});
