import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { SETTINGS } from "../src/config.js";

// The README and docs/ stay true: the opening commands, the configuration
// table, the TypeScript example, every relative link, and no pointer to a
// contract outside the repository.

const root = fileURLToPath(new URL("..", import.meta.url));
const read = (path: string) => readFileSync(join(root, path), "utf8");
const readme = read("README.md");

/** The Markdown pages whose relative links must resolve. */
const PAGES = [
  "README.md",
  "bench/README.md",
  "python/README.md",
  ...readdirSync(join(root, "docs"))
    .filter((name) => name.endsWith(".md"))
    .map((name) => `docs/${name}`),
];

/** The first fenced block of `language` in `markdown`. */
function firstBlock(markdown: string, language: string): string {
  const match = new RegExp(`\`\`\`${language}\\n([\\s\\S]*?)\`\`\``).exec(markdown);
  if (match?.[1] === undefined) throw new Error(`no ${language} block`);
  return match[1];
}

/** Relative link targets of a Markdown page, without their #fragment. */
function relativeLinks(markdown: string): string[] {
  const prose = markdown.replace(/```[\s\S]*?```/g, "");
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1] ?? "")
    .filter((target) => !/^[a-z]+:/i.test(target) && !target.startsWith("#"))
    .map((target) => target.split("#")[0] ?? "");
}

/** Type errors of `source` as a module beside the tests, under the consumer's strictest settings. */
function typeErrors(source: string): string[] {
  const file = join(root, "test", "readme-example.ts");
  const options: ts.CompilerOptions = {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.Node16,
    moduleResolution: ts.ModuleResolutionKind.Node16,
    strict: true,
    exactOptionalPropertyTypes: true,
    noEmit: true,
    skipLibCheck: true,
    types: ["node"],
    paths: { "@runstore/client": [join(root, "client/src/index.ts")] },
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) =>
    resolve(name) === file
      ? ts.createSourceFile(name, source, language)
      : getSourceFile(name, language, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => resolve(name) === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  const example = program.getSourceFile(file);
  // Only the example's own errors: the SDK's sources are checked by `npm run typecheck`.
  return [
    ...program.getSyntacticDiagnostics(example),
    ...program.getSemanticDiagnostics(example),
  ].map((d) => `TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, "\n")}`);
}

describe("README", () => {
  it("opens with the install-and-start command and the test command", () => {
    const opening = readme.split("\n").slice(0, 6).join("\n");
    expect(opening).toContain("npm ci && npm run build && npm start");
    expect(opening).toContain("npm test");
  });

  it("has a TypeScript example that type-checks under strict + exactOptionalPropertyTypes", () => {
    expect(typeErrors(firstBlock(readme, "ts"))).toEqual([]);
  });

  it("docs/workers.md has a TypeScript example that type-checks the same way", () => {
    expect(typeErrors(firstBlock(read("docs/workers.md"), "ts"))).toEqual([]);
  });

  it("has the Python example under its Python heading", () => {
    const section = readme.split("\n## Python\n")[1] ?? "";
    expect(firstBlock(section, "python")).toContain("GrpcRunStore(");
  });
});

describe("docs", () => {
  it("docs/operations.md lists every setting with its default, in the order --help does", () => {
    const rows = read("docs/operations.md")
      .split("\n")
      .filter((line) => /^\| `[A-Z_]+` \|/.test(line));
    expect(rows).toEqual(
      SETTINGS.map(
        ([name, fallback, meaning]) =>
          `| \`${name}\` | ${fallback === "(unset)" ? "unset" : `\`${fallback}\``} | ${meaning} |`,
      ),
    );
  });

  it("every relative link of README.md and docs/*.md points to a file that exists", () => {
    const broken = PAGES.flatMap((page) =>
      relativeLinks(read(page))
        .filter((target) => !existsSync(resolve(root, dirname(page), target)))
        .map((target) => `${page} → ${target}`),
    );
    expect(PAGES).toContain("docs/contract.md");
    expect(broken).toEqual([]);
  });

  it("no file points to a contract outside the repository", () => {
    // Spelled in two parts so this file does not name it itself.
    const outside = ["shared", "SPEC"].join("/");
    const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], {
      cwd: root,
      encoding: "utf8",
    })
      .split("\n")
      .filter((path) => path !== "" && existsSync(join(root, path)));
    const pointing = files.filter((path) => read(path).includes(outside));
    expect(pointing).toEqual([]);
  });
});
