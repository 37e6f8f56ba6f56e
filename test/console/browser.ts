import { mkdir, readFile, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";

/** Debian's Chromium (the `chromium` package the test command installs); no browser download. */
export const CHROMIUM = "/usr/bin/chromium";

const root = fileURLToPath(new URL("../..", import.meta.url));

/** Where each page's screenshot goes (gitignored): test-results/console/<page>.png. */
export const SCREENSHOTS = join(root, "test-results", "console");

/** What a page did that a clean console page never does. */
export interface PageProblems {
  /** console.error lines and uncaught exceptions. */
  errors: string[];
  /** Content-Security-Policy violations the page reported (securitypolicyviolation). */
  cspViolations: string[];
  /** Every URL the page requested. */
  urls: string[];
  /** The Authorization header of every call to the service ("" when none). */
  authorization: string[];
}

/** One Chromium for the file, a context in the given time zone, and its page under watch. */
export interface ConsoleBrowser {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  problems: PageProblems;
  close(): Promise<void>;
}

/**
 * Launches Debian's Chromium headless with a page that records console
 * errors, uncaught exceptions, CSP violations (the event listener is
 * installed by the browser before the page's own scripts, so the page's
 * policy does not apply to it) and every request.
 */
export async function openBrowser(
  timezoneId: string,
  servicePath: string,
): Promise<ConsoleBrowser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  const context = await browser.newContext({ timezoneId, viewport: { width: 1280, height: 860 } });
  // Below vitest's 20 s test timeout, so a wait that fails says what it waited for.
  context.setDefaultTimeout(15_000);
  const problems: PageProblems = { errors: [], cspViolations: [], urls: [], authorization: [] };
  await context.exposeBinding("__reportCsp", (_source, text: string) => {
    problems.cspViolations.push(text);
  });
  // A string, not a function: this file is type-checked without the DOM's types.
  await context.addInitScript({
    content:
      "document.addEventListener('securitypolicyviolation', (e) => " +
      "window.__reportCsp(e.violatedDirective + ' blocked ' + e.blockedURI));",
  });
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") problems.errors.push(message.text());
  });
  page.on("pageerror", (error) => problems.errors.push(`uncaught: ${error.message}`));
  page.on("request", (request) => {
    problems.urls.push(request.url());
    if (new URL(request.url()).pathname.startsWith(servicePath)) {
      problems.authorization.push(request.headers().authorization ?? "");
    }
  });
  return { browser, context, page, problems, close: () => browser.close() };
}

const axeSource = readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");

/** One axe-core finding: the rule and the elements it failed on. */
export interface AxeViolation {
  id: string;
  impact: string | null;
  nodes: string[];
}

/**
 * The WCAG 2 A and AA violations axe-core finds on the page as it is now.
 * axe's source goes in through the DevTools protocol (page.evaluate), which
 * the page's Content-Security-Policy does not govern.
 */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  const source = await axeSource;
  if (!(await page.evaluate(() => "axe" in globalThis))) await page.evaluate(source);
  return page.evaluate(async () => {
    type Result = {
      violations: { id: string; impact: string | null; nodes: { target: string[] }[] }[];
    };
    const axe = (globalThis as unknown as { axe: { run(o: unknown): Promise<Result> } }).axe;
    const result = await axe.run({ runOnly: { type: "tag", values: ["wcag2a", "wcag2aa"] } });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      nodes: v.nodes.map((n) => n.target.join(" ")),
    }));
  });
}

/** Saves a screenshot of the whole page as test-results/console/<name>.png (and of its content to `alsoTo`). */
export async function screenshot(page: Page, name: string, alsoTo?: string): Promise<void> {
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
  if (alsoTo !== undefined) {
    await mkdir(dirname(alsoTo), { recursive: true });
    await writeFile(alsoTo, await page.locator("body").screenshot()); // cut to the content
  }
}
