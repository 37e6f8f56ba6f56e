import { readdirSync, readFileSync } from "node:fs";
import { Code, ConnectError } from "@connectrpc/connect";
import type { RunStore } from "@runstore/client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  type CaseFile,
  type CaseStores,
  type ContractCase,
  loadCaseFiles,
  runCase,
} from "./case-runner.js";
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

/**
 * The cases a runner registers, by file: every case over the wire (a remote
 * runner, given openScoped), the cases that are not remote-only in-process.
 */
export function casesRunBy(files: readonly CaseFile[], remote: boolean): CaseFile[] {
  return files.map((file) => ({
    ...file,
    cases: file.cases.filter((contractCase) => remote || !contractCase.remoteOnly),
  }));
}

/** "<spec> > <case name>" of every case of these files, as the tests are named. */
function caseNames(files: readonly CaseFile[]): Set<string> {
  return new Set(
    files.flatMap((file) =>
      file.cases.map((contractCase) => `${file.spec} > ${contractCase.name}`),
    ),
  );
}

/**
 * The remote-only cases counted from the files as written (a file's
 * "remoteOnly" covers its cases, a case's own overrides it), apart from the
 * loader that the runners select with.
 */
function remoteOnlyAsWritten(): Set<string> {
  const directory = new URL("./cases/", import.meta.url);
  const names = readdirSync(directory)
    .filter((name) => name.endsWith(".json"))
    .flatMap((name) => {
      const file = JSON.parse(readFileSync(new URL(name, directory), "utf8")) as CaseFile;
      return file.cases
        .filter((contractCase) => contractCase.remoteOnly ?? file.remoteOnly ?? false)
        .map((contractCase) => `${file.spec} > ${contractCase.name}`);
    });
  return new Set(names);
}

/**
 * The one test an in-process runner has for the remote-only cases it leaves
 * out (scoped tokens are a server feature): how many there are, none run
 * here, and every one registered by the remote runners' selection.
 */
function remoteOnlyAccounted(): void {
  const remoteOnly = remoteOnlyAsWritten();
  it(`leaves out the ${remoteOnly.size} remote-only cases, which every remote runner runs`, () => {
    const inProcess = caseNames(casesRunBy(CASE_FILES, false));
    const remote = caseNames(casesRunBy(CASE_FILES, true));
    expect(remoteOnly.size).toBeGreaterThan(0);
    expect([...remoteOnly].filter((name) => inProcess.has(name))).toEqual([]);
    expect([...remoteOnly].filter((name) => !remote.has(name))).toEqual([]);
    expect(remote.size).toBe(inProcess.size + remoteOnly.size);
  });
}

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
 * remote-only cases (scoped tokens are a server feature) are left out, and
 * one test accounts for them (remoteOnlyAccounted).
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

    for (const file of casesRunBy(CASE_FILES, openScoped !== undefined)) {
      if (file.cases.length === 0) continue;
      describe(file.spec, () => {
        for (const contractCase of file.cases) {
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

    if (openScoped === undefined) remoteOnlyAccounted();

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
