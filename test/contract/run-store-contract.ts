import { Code, ConnectError } from "@connectrpc/connect";
import type { RunStore } from "@runstore/client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { loadCaseFiles, runCase } from "./case-runner.js";
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

const CASE_FILES = loadCaseFiles();

/**
 * The behaviour contract of docs/contract.md against one RunStore. The cases are the
 * data in cases/*.json, which the Python suite runs too: one describe per
 * file, named for the docs/contract.md section it checks, one test per case, named for
 * its rule. Inputs only TypeScript can hand over (bigint, Date, circular
 * objects) are in typescript-inputs.ts. `open` gives a fresh empty store per
 * test.
 */
export function runStoreContract(name: string, open: () => Promise<StoreHandle>): void {
  describe(`RunStore contract: ${name}`, () => {
    let handle: StoreHandle;
    // What a store must never do while handling model names or JSON keys.
    const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort();
    beforeEach(async () => {
      handle = await open();
    });
    afterEach(async () => {
      await handle.close();
      expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeKeys);
    });

    for (const file of CASE_FILES) {
      describe(file.spec, () => {
        for (const contractCase of file.cases) {
          it(contractCase.name, () => runCase(handle.store, contractCase));
        }
      });
    }

    typescriptInputs(() => handle.store);
  });
}
