import { describe, expect, it } from "vitest";
import { CASE_METHODS } from "./case-calls.js";
import { type ContractCase, loadCaseFiles } from "./case-runner.js";

// The scoped-token matrix stays whole: every contract method (so every RPC
// of RunStoreService the cases can call) is called in the scoped cases with a
// read, a write and an admin token. A method added to CASE_METHODS without
// scoped cases fails here, naming what is missing.

const ROLES = ["read", "write", "admin"] as const;

/** Every "method × role" the steps of these cases call, parallel steps included. */
function calledWith(cases: readonly ContractCase[]): Set<string> {
  const called = new Set<string>();
  const visit = (step: Record<string, unknown>, tokens: ContractCase["tokens"]) => {
    if (Array.isArray(step.parallel)) {
      for (const inner of step.parallel) visit(inner, tokens);
      return;
    }
    const method = CASE_METHODS.find((name) => name in step);
    const scope = typeof step.as === "string" ? tokens?.[step.as] : undefined;
    if (method !== undefined && scope !== undefined) called.add(`${method} × ${scope.role}`);
  };
  for (const contractCase of cases) {
    for (const step of contractCase.steps) visit(step, contractCase.tokens);
  }
  return called;
}

describe("scoped-token cases", () => {
  it("call every contract method with a read, a write and an admin token", () => {
    const cases = loadCaseFiles().flatMap((file) => file.cases);
    const called = calledWith(cases.filter((contractCase) => contractCase.tokens !== undefined));
    const missing = CASE_METHODS.flatMap((method) =>
      ROLES.map((role) => `${method} × ${role}`),
    ).filter((pair) => !called.has(pair));
    expect(missing).toEqual([]);
  });
});
