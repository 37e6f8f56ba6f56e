import type { RunStore } from "@runstore/client";

/**
 * The runs the console test reads, written through the second client:
 * alice's r01..r12 on thread ta (June 2025; r03 and r07 ended in error, the
 * rest success; run i spent i × 100 tokens of m-small), bob's b01..b03 on
 * thread tb, and carol's u1..u3 in January 2026 for the usage chart (UTC
 * times that fall on other days in Tokyo).
 */
export async function seedConsoleRuns(store: RunStore): Promise<void> {
  for (let i = 1; i <= 12; i++) {
    const runId = `r${String(i).padStart(2, "0")}`;
    await store.put(runId, {
      threadId: "ta",
      userId: "alice",
      modelName: "m-small",
      status: "running",
      metadata: { source: "console-test" },
      createdAt: `2025-06-01T00:00:${String(i).padStart(2, "0")}Z`,
    });
    const tokens = i * 100;
    const input = Math.round((tokens * 5) / 6);
    const lead = Math.round((tokens * 7) / 12);
    const sub = Math.round(tokens / 3);
    await store.updateRunCompletion(runId, {
      status: i === 3 || i === 7 ? "error" : "success",
      totalTokens: tokens,
      totalInputTokens: input,
      totalOutputTokens: tokens - input,
      leadAgentTokens: lead,
      subagentTokens: sub,
      middlewareTokens: tokens - lead - sub,
      llmCallCount: i,
      tokenUsageByModel: {
        "m-small": { inputTokens: input, outputTokens: tokens - input, totalTokens: tokens },
      },
    });
  }
  for (let i = 1; i <= 3; i++) {
    await store.put(`b0${i}`, {
      threadId: "tb",
      userId: "bob",
      status: "success",
      createdAt: `2025-06-02T00:00:0${i}Z`,
    });
  }
  const usage: [string, string, string, number][] = [
    ["u1", "2026-01-01T20:00:00Z", "m-small", 100],
    ["u2", "2026-01-02T10:00:00Z", "m-large", 300],
    ["u3", "2026-01-03T16:00:00Z", "m-small", 50],
  ];
  for (const [runId, createdAt, modelName, totalTokens] of usage) {
    await store.put(runId, {
      threadId: "tu",
      userId: "carol",
      modelName,
      createdAt,
      status: "running",
    });
    await store.updateRunCompletion(runId, { status: "success", totalTokens });
  }
}
