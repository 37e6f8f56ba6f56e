import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { RemoteRunStore, type RunStatus, RunStoreService } from "@runstore/client";
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildConsole } from "../../scripts/build-console.mjs";
import { type RunningServer, startServer } from "../../src/server.js";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { axeViolations, type ConsoleBrowser, openBrowser, screenshot } from "./browser.js";
import { seedConsoleRuns } from "./seed.js";

// The run console in Debian's Chromium against a real server (memory store,
// console on port 0) whose runs are written by a second, independent client
// (RemoteRunStore over HTTP/2). One browser, one server, the pages in turn.
// The browser's time zone is Asia/Tokyo (+09:00), so the usage page's days
// differ from UTC days and show that the page counts in the browser's zone.

const TOKEN = "console-test-token-0123456789";
/** How long a poll of the page waits (a bound for a loaded CI machine, not a speed check). */
const POLL = { timeout: 15_000, interval: 20 };
/** Set to write the live page's screenshot to docs/console-live.png (the README's picture). */
const README_SHOT = process.env.CONSOLE_README_SCREENSHOT === "1";

describe("run console in Chromium", () => {
  let bundle: string;
  let server: RunningServer;
  let writer: RemoteRunStore;
  let web: ConsoleBrowser;
  let page: Page;
  let origin: string;

  beforeAll(async () => {
    bundle = await mkdtemp(join(tmpdir(), "runstore-console-"));
    await buildConsole(bundle);
    server = await startServer({
      store: new MemoryRunStore(),
      tokens: [TOKEN],
      console: { port: 0, host: "127.0.0.1", root: bundle },
    });
    origin = server.consoleUrl ?? "";
    writer = new RemoteRunStore({ baseUrl: server.url, token: TOKEN });
    await seedConsoleRuns(writer);
    web = await openBrowser("Asia/Tokyo", `/${RunStoreService.typeName}/`);
    page = web.page;
  }, 60_000);

  afterAll(async () => {
    await web?.close();
    writer?.close();
    await server?.close(1000);
    if (bundle !== undefined) await rm(bundle, { recursive: true, force: true });
  });

  /** The run ids of the table's rows, top to bottom. */
  const rowIds = (selector = "table.runs tbody tr") =>
    page
      .locator(selector)
      .evaluateAll((rows) => rows.map((row) => row.getAttribute("data-run-id")));

  /** A run of the live thread tl, written by the second client. */
  const putLive = (runId: string, userId: string, modelName: string, status: RunStatus) =>
    writer.put(runId, { threadId: "tl", userId, modelName, status });

  /** No WCAG 2 A / AA violation on the page as it is now. */
  const expectAccessible = async () => expect(await axeViolations(page)).toEqual([]);

  it("asks for the bearer token once and keeps it in sessionStorage for the tab", async () => {
    await page.goto(`${origin}/`);
    await page.getByLabel("Bearer token").waitFor();
    await expectAccessible();
    await screenshot(page, "token");
    // By keyboard alone: type the token, Tab to the button (its focus ring shows), Enter.
    await page.getByLabel("Bearer token").focus();
    await page.keyboard.type(TOKEN);
    await page.keyboard.press("Tab");
    const focused = page.getByRole("button", { name: "Use token" });
    expect(await focused.evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true);
    const outline = await focused.evaluate(
      (el) => el.ownerDocument.defaultView?.getComputedStyle(el).outlineStyle,
    );
    expect(outline).toBe("solid");
    await page.keyboard.press("Enter");
    await page.locator("tr[data-run-id]").first().waitFor();
    expect(await page.evaluate("sessionStorage.getItem('runstore.token')")).toBe(TOKEN);
    await page.reload();
    await page.locator("tr[data-run-id]").first().waitFor();
    expect(await page.getByLabel("Bearer token").count()).toBe(0);
  });

  it("a search filters: exactly the matching runs, newest first", async () => {
    expect(await page.getByLabel("Page size").inputValue()).toBe("20");
    await page.getByLabel("User").fill("bob");
    await page.getByRole("button", { name: "Search" }).click();
    await expect.poll(rowIds, POLL).toEqual(["b03", "b02", "b01"]);
    await page.getByLabel("User").fill("alice");
    await page.getByLabel("error", { exact: true }).check();
    await page.getByRole("button", { name: "Search" }).click();
    await expect.poll(rowIds, POLL).toEqual(["r07", "r03"]);
    await expectAccessible();
    await screenshot(page, "runs");
  });

  it("pages turn forward and back with the keyset tokens", async () => {
    await page.goto(`${origin}/#/runs?user=alice&size=10`);
    const first = ["r12", "r11", "r10", "r09", "r08", "r07", "r06", "r05", "r04", "r03"];
    await expect.poll(() => page.getByLabel("Page size").inputValue(), POLL).toBe("10");
    await expect.poll(rowIds, POLL).toEqual(first);
    await page.getByRole("button", { name: "Next page" }).click();
    await expect.poll(rowIds, POLL).toEqual(["r02", "r01"]);
    expect(await page.getByRole("button", { name: "Next page" }).isDisabled()).toBe(true);
    await page.getByRole("button", { name: "Previous page" }).click();
    await expect.poll(rowIds, POLL).toEqual(first);
  });

  it("a run shows every field and its token usage by model and by caller", async () => {
    await page.getByRole("link", { name: "r12", exact: true }).click();
    await page.locator("tr[data-field='run_id']").waitFor();
    const field = (name: string) => page.locator(`tr[data-field='${name}'] td`).innerText();
    expect(await page.locator("tr[data-field]").count()).toBe(32);
    expect(await field("run_id")).toBe("r12");
    expect(await field("status")).toBe("RUN_STATUS_SUCCESS");
    expect(await field("total_tokens")).toBe("1200");
    expect(await field("metadata")).toBe('{"source":"console-test"}');
    expect(await page.locator("tr[data-model='m-small'] td").allInnerTexts()).toEqual([
      "1,000",
      "200",
      "1,200",
      "0",
    ]);
    const caller = (key: string) => page.locator(`tr[data-caller='${key}'] td`).innerText();
    expect([
      await caller("lead_agent"),
      await caller("subagent"),
      await caller("middleware"),
    ]).toEqual(["700", "400", "100"]);
    await expectAccessible();
    await screenshot(page, "run");
  });

  it("a thread shows its runs as a timeline, oldest first, and its usage", async () => {
    await page.getByRole("link", { name: "ta", exact: true }).first().click();
    await page.locator("ol.timeline li").first().waitFor();
    const ids = Array.from({ length: 12 }, (_, i) => `r${String(i + 1).padStart(2, "0")}`);
    expect(await rowIds("ol.timeline li")).toEqual(ids);
    // Every run of the thread ended success or error: all count, 100 + 200 + … + 1200.
    expect(await page.locator("[data-total-tokens]").getAttribute("data-total-tokens")).toBe(
      "7800",
    );
    expect(await page.locator("tr[data-model='m-small'] td").allInnerTexts()).toEqual([
      "7,800",
      "12",
    ]);
    await expectAccessible();
    await screenshot(page, "thread");
  });

  it("the usage chart draws tokens per day by model in the browser's time zone", async () => {
    await page.goto(`${origin}/#/usage?from=2026-01-01&to=2026-01-05`);
    const chart = page.locator("figure.chart [data-series]");
    await chart.waitFor();
    expect(await page.locator("figure.chart canvas").count()).toBe(1);
    // In Tokyo: u1 (01-01 20:00Z) and u2 (01-02 10:00Z) fall on 01-02, u3 (01-03 16:00Z) on 01-04.
    expect(JSON.parse((await chart.getAttribute("data-series")) ?? "")).toEqual({
      dates: ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"],
      models: ["m-large", "m-small"],
      tokens: [
        [0, 300, 0, 0, 0],
        [0, 100, 0, 50, 0],
      ],
    });
    expect(await page.locator("[data-total-runs]").getAttribute("data-total-runs")).toBe("3");
    await expectAccessible();
    await screenshot(page, "usage");
  });

  it("the live page follows WatchRuns: another client's changes appear without reload", async () => {
    await putLive("live-0", "dana", "m-small", "running");
    await page.goto(`${origin}/#/live`);
    await page.locator("[data-live-state='live']").waitFor();
    await page.locator("tr[data-run-id='live-0']").waitFor();
    await page.evaluate("window.notReloaded = true");
    await putLive("live-1", "dana", "m-large", "pending");
    await page.locator("tr[data-run-id='live-1'][data-status='pending']").waitFor();
    await writer.updateStatus("live-1", "running");
    await page.locator("tr[data-run-id='live-1'][data-status='running']").waitFor();
    await writer.updateStatus("live-1", "success");
    await page.locator("tr[data-run-id='live-1']").waitFor({ state: "detached" });
    await expect.poll(rowIds, POLL).toEqual(["live-0"]);
    expect(await page.evaluate("window.notReloaded")).toBe(true);
  });

  it("the cancel button reaches the run: RequestCancel(interrupt), seen through the stream", async () => {
    await putLive("live-2", "erin", "m-large", "running");
    await writer.updateRunProgress("live-2", { totalTokens: 1520 });
    await page.locator("tr[data-run-id='live-2'] td.number", { hasText: "1,520" }).waitFor();
    await page.getByRole("button", { name: "Cancel run live-0" }).click();
    await page.locator("tr[data-run-id='live-0'] [data-cancel='interrupt']").waitFor();
    expect((await writer.get("live-0"))?.cancelAction).toBe("interrupt");
    expect((await writer.get("live-2"))?.cancelAction).toBe(null);
    await expectAccessible();
    await screenshot(page, "live", README_SHOT ? docsPicture() : undefined);
  });

  it("nothing went wrong on any page: no console error, no CSP violation, no token in a URL", () => {
    expect(web.problems.errors).toEqual([]);
    expect(web.problems.cspViolations).toEqual([]);
    expect(web.problems.urls.filter((url) => url.includes(TOKEN))).toEqual([]);
    expect(web.problems.urls.filter((url) => !url.startsWith(`${origin}/`))).toEqual([]);
    // Every call to the service carried the token as its Authorization header.
    expect(web.problems.authorization.length).toBeGreaterThan(10);
    expect(new Set(web.problems.authorization)).toEqual(new Set([`Bearer ${TOKEN}`]));
  });

  it("the watch on CSP violations sees one: an inline style is refused and reported", async () => {
    await page.evaluate(
      "document.body.insertAdjacentHTML('beforeend', '<p style=\"color: red\">inline</p>')",
    );
    await expect
      .poll(() => web.problems.cspViolations, POLL)
      .toEqual(["style-src-attr blocked inline"]);
  });

  // Last: the failed calls of a restart are console errors of their own.
  it("the live page resumes after a restart: the old cursor is OUT_OF_RANGE, so it lists again", async () => {
    await page.goto(`${origin}/#/live`);
    await page.locator("[data-live-state='live']").waitFor();
    await page.evaluate("window.notReloaded = true");
    await server.close(0);
    await page.locator("[data-live-state='retrying']").waitFor();
    // A new memory store (another change log) on the same console port.
    server = await startServer({
      store: new MemoryRunStore(),
      tokens: [TOKEN],
      console: { port: Number(new URL(origin).port), host: "127.0.0.1", root: bundle },
    });
    writer.close();
    writer = new RemoteRunStore({ baseUrl: server.url, token: TOKEN });
    await putLive("after-restart", "dana", "m-small", "running");
    await expect.poll(rowIds, POLL).toEqual(["after-restart"]);
    await page.locator("[data-live-state='live']").waitFor();
    expect(await page.evaluate("window.notReloaded")).toBe(true);
  });
});

function docsPicture(): string {
  return fileURLToPath(new URL("../../docs/console-live.png", import.meta.url));
}
