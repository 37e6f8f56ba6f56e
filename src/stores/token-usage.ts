import { Code, ConnectError } from "@connectrpc/connect";
import type { ModelUsage, ThreadTokenUsage } from "@runstore/client";

/** One run's (or one group of runs') share of a thread's usage. */
export interface UsageShare {
  runs: number;
  totalTokens: number;
  totalInputTokens: number;
  totalOutputTokens: number;
  leadAgentTokens: number;
  subagentTokens: number;
  middlewareTokens: number;
}

/**
 * Adds up aggregate_tokens_by_thread the same way for every backend. Models
 * are keyed in a Map, so a model named "__proto__" or "toString" is just a
 * name. by_model comes from a run's token_usage_by_model when it has one;
 * otherwise from its model_name, a null one counting under "unknown".
 */
export class TokenUsageTally {
  private readonly byModel = new Map<string, { tokens: number; runs: number }>();
  private readonly usage: Omit<ThreadTokenUsage, "byModel"> = {
    totalTokens: 0,
    totalInputTokens: 0,
    totalOutputTokens: 0,
    totalRuns: 0,
    byCaller: { leadAgent: 0, subagent: 0, middleware: 0 },
  };

  /**
   * Adds a share. With a non-empty `usageByModel`, each model in it adds its
   * total_tokens and counts the share's runs once; with an empty one (the
   * default, and part 1's rule), `modelName` takes the share's total_tokens.
   */
  add(
    modelName: string | null,
    share: UsageShare,
    usageByModel: Readonly<Record<string, ModelUsage>> = {},
  ): void {
    const u = this.usage;
    u.totalTokens += share.totalTokens;
    u.totalInputTokens += share.totalInputTokens;
    u.totalOutputTokens += share.totalOutputTokens;
    u.totalRuns += share.runs;
    u.byCaller.leadAgent += share.leadAgentTokens;
    u.byCaller.subagent += share.subagentTokens;
    u.byCaller.middleware += share.middlewareTokens;
    const models = Object.entries(usageByModel);
    if (models.length === 0) this.addModel(modelName ?? "unknown", share.totalTokens, share.runs);
    for (const [model, usage] of models) this.addModel(model, usage.totalTokens, share.runs);
  }

  private addModel(model: string, tokens: number, runs: number): void {
    const entry = this.byModel.get(model) ?? { tokens: 0, runs: 0 };
    entry.tokens += tokens;
    entry.runs += runs;
    this.byModel.set(model, entry);
  }

  /**
   * The totals; OUT_OF_RANGE when a sum passes 2^53-1, the bound every
   * counter has, rather than an answer rounded by float arithmetic.
   */
  result(): ThreadTokenUsage {
    const u = this.usage;
    const sums = [u.totalTokens, u.totalInputTokens, u.totalOutputTokens, u.totalRuns];
    sums.push(u.byCaller.leadAgent, u.byCaller.subagent, u.byCaller.middleware);
    for (const entry of this.byModel.values()) sums.push(entry.tokens);
    if (sums.some((sum) => sum > Number.MAX_SAFE_INTEGER)) {
      throw new ConnectError(
        `token sums of this thread exceed ${Number.MAX_SAFE_INTEGER}, the largest exact value`,
        Code.OutOfRange,
      );
    }
    return { ...u, byModel: Object.fromEntries(this.byModel) };
  }
}
