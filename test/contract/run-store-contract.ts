import { Code, ConnectError } from "@connectrpc/connect";
import type { RunStore } from "@runstore/client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type CaseStores, type ContractCase, loadCaseFiles, runCase } from "./case-runner.js";
import { tokenFileLines, tokenOf } from "./case-tokens.js";
import { typescriptInputs } from "./typescript-inputs.js";

/** A fresh, empty store for one test, and how to dispose of it. */
export interface StoreHandle {
  store: RunStore;
  close(): Promise<void>;
}

/** Asserts that the call rejects with INVALID_ARGUMENT and a message naming `field`. */
export async function expectInvalid(call: Promise<unknown>, field: string): Promise<void> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, `expected INVALID_ARGUMENT naming ${field}`).toBeDefined();
  const ce = ConnectError.from(error);
  expect(ce.code).toBe(Code.InvalidArgument);
  expect(ce.rawMessage).toContain(field);
}

/**
 * A server over a fresh, empty store that requires bearer tokens: `store`
 * calls with the unscoped admin token, `withToken(token)` with another.
 */
export interface ScopedHandle extends StoreHandle {
  withToken(token: string): RunStore;
}

/** Opens a ScopedHandle whose server reads these AUTH_TOKENS_FILE lines. */
export type OpenScoped = (tokenLines: readonly string[]) => Promise<ScopedHandle>;

const CASE_FILES = loadCaseFiles();

/** The stores a case's steps call, opened for it (with its tokens, when it has any). */
async function openFor(
  contractCase: ContractCase,
  open: () => Promise<StoreHandle>,
  openScoped: OpenScoped,
): Promise<{ handle: StoreHandle; stores: CaseStores }> {
  const tokens = contractCase.tokens;
  if (tokens === undefined) {
    const handle = await open();
    return { handle, stores: () => handle.store };
  }
  const handle = await openScoped(tokenFileLines(Object.values(tokens)));
  const stores: CaseStores = (name) => {
    const scope = name === undefined ? undefined : tokens[name];
    return scope === undefined ? handle.store : handle.withToken(tokenOf(scope));
  };
  return { handle, stores };
}

/**
 * The behaviour contract of docs/contract.md against one RunStore. The cases are the
 * data in cases/*.json, which the Python suite runs too: one describe per
 * file, named for the docs/contract.md section it checks, one test per case, named for
 * its rule. Inputs only TypeScript can hand over (bigint, Date, circular
 * objects) are in typescript-inputs.ts. `open` gives a fresh empty store per
 * test. `openScoped` is given by the remote runners only: without it the
 * remote-only cases (scoped tokens are a server feature) are counted as
 * skipped, "not applicable in-process", never dropped.
 */
export function runStoreContract(
  name: string,
  open: () => Promise<StoreHandle>,
  openScoped?: OpenScoped,
): void {
  describe(`RunStore contract: ${name}`, () => {
    // What a store must never do while handling model names or JSON keys.
    const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort();
    const prototypeUntouched = () =>
      expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeKeys);

    for (const file of CASE_FILES) {
      describe(file.spec, () => {
        for (const contractCase of file.cases) {
          if (contractCase.remoteOnly && openScoped === undefined) {
            it.skip(`${contractCase.name} [remote only: not applicable in-process]`, () => {});
            continue;
          }
          it(contractCase.name, async () => {
            const { handle, stores } = await openFor(contractCase, open, openScoped as OpenScoped);
            try {
              await runCase(stores, contractCase);
            } finally {
              await handle.close();
            }
            prototypeUntouched();
          });
        }
      });
    }

    let handle: StoreHandle;
    typescriptInputs(
      () => handle.store,
      () => {
        beforeEach(async () => {
          handle = await open();
        });
        afterEach(async () => {
          await handle.close();
          prototypeUntouched();
        });
      },
    );
  });
}
