// Bundles the run console (console/) into static files: index.html, app.js,
// app.css. `npm run build` writes them to dist/console, where the server's
// CONSOLE_PORT serves them from; the browser tests build into a folder of
// their own first.
import { copyFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Where `npm run build` puts the console, and where the server looks by default. */
export const CONSOLE_OUT_DIR = join(root, "dist", "console");

/**
 * Bundles console/src/main.tsx (Preact, uPlot, connect-web, the generated
 * service) into `outdir`: one script, one stylesheet and the page, with
 * nothing loaded from elsewhere. Answers the files written.
 */
export async function buildConsole(outdir = CONSOLE_OUT_DIR) {
  await mkdir(outdir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: { app: join(root, "console", "src", "main.tsx") },
    outdir,
    bundle: true,
    minify: true,
    sourcemap: false,
    format: "esm",
    target: ["chrome110", "firefox110", "safari16"],
    jsx: "automatic",
    jsxImportSource: "preact",
    legalComments: "none",
    logLevel: "warning",
    metafile: true,
  });
  await copyFile(join(root, "console", "index.html"), join(outdir, "index.html"));
  return [
    "index.html",
    ...Object.keys(result.metafile.outputs).map((path) => path.split("/").pop()),
  ];
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const outdir = process.argv[2] ?? CONSOLE_OUT_DIR;
  const files = await buildConsole(outdir);
  console.log(`console built in ${outdir}: ${files.join(", ")}`);
}
