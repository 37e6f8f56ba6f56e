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
import type { CaseServers } from "./case-servers.js";
import { caseSettings } from "./case-settings.js";
import { tokenFileLines, tokenOf } from "./case-tokens.js";
import type { Backend } from "./case-watch-format.js";
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

/**
 * How a remote runner gives a case servers of its own (watch steps,
 * restarts, replicas, settings): on its backend, requiring the tokens of
 * `tokenLines` (undefined: none), with these settings.
 */
export interface RunnerServers {
  backend: Backend;
  open(
    tokenLines: readonly string[] | undefined,
    settings: Record<string, number>,
  ): Promise<CaseServers>;
}

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

/**
 * The cases a remote runner registers: its selection (casesRunBy) less the
 * cases for another backend ("backends"), and without servers of its own
 * (`servers` undefined) less the cases that need them.
 */
export function casesForRunner(
  files: readonly CaseFile[],
  servers: RunnerServers | undefined,
): CaseFile[] {
  return casesRunBy(files, true).map((file) => ({
    ...file,
    cases: file.cases.filter((contractCase) =>
      servers === undefined
        ? !contractCase.servers
        : (contractCase.backends ?? [servers.backend]).includes(servers.backend),
    ),
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
  return casesAsWritten(
    (contractCase, file) => (contractCase.remoteOnly ?? file.remoteOnly ?? false) === true,
  );
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

/** Every case of the files as written that `keep` selects, by "<spec> > <case name>". */
function casesAsWritten(
  keep: (contractCase: Record<string, unknown>, file: Record<string, unknown>) => boolean,
): Set<string> {
  const directory = new URL("./cases/", import.meta.url);
  return new Set(
    readdirSync(directory)
      .filter((name) => name.endsWith(".json"))
      .flatMap((name) => {
        const file = JSON.parse(readFileSync(new URL(name, directory), "utf8")) as CaseFile;
        const raw = file as unknown as Record<string, unknown>;
        return file.cases
          .filter((contractCase) => keep(contractCase as unknown as Record<string, unknown>, raw))
          .map((contractCase) => `${file.spec} > ${contractCase.name}`);
      }),
  );
}

/**
 * The one test a remote runner has for the cases of another backend it
 * leaves out ("backends": a second replica needs a shared database, a
 * resume after a restart differs): how many, none registered here, each
 * registered by the other backend's runners.
 */
function otherBackendsAccounted(servers: RunnerServers): void {
  const other: Backend = servers.backend === "memory" ? "mysql" : "memory";
  const elsewhere = casesAsWritten((contractCase, file) => {
    const backends = (contractCase.backends ?? file.backends) as Backend[] | undefined;
    return backends !== undefined && !backends.includes(servers.backend);
  });
  it(`leaves out the ${elsewhere.size} cases for ${other} only, which the ${other} runners run`, () => {
    const here = caseNames(casesForRunner(CASE_FILES, servers));
    const there = caseNames(casesForRunner(CASE_FILES, { ...servers, backend: other }));
    expect(elsewhere.size).toBeGreaterThan(0);
    expect([...elsewhere].filter((name) => here.has(name))).toEqual([]);
    expect([...elsewhere].filter((name) => !there.has(name))).toEqual([]);
  });
}

/**
 * The one test a remote runner without servers of its own has for the cases
 * that need them (watch steps): how many, none registered here, each
 * registered by a runner that has them (test/contract/remote-*.test.ts).
 */
function serverCasesAccounted(): void {
  const withServers = new Set(
    CASE_FILES.flatMap((file) =>
      file.cases.filter((c) => c.servers).map((c) => `${file.spec} > ${c.name}`),
    ),
  );
  it(`leaves out the ${withServers.size} cases that need servers of their own, which test/contract/remote-*.test.ts run`, () => {
    const here = caseNames(casesForRunner(CASE_FILES, undefined));
    const memory = caseNames(casesForRunner(CASE_FILES, { backend: "memory", open: noServers }));
    const mysql = caseNames(casesForRunner(CASE_FILES, { backend: "mysql", open: noServers }));
    expect(withServers.size).toBeGreaterThan(0);
    expect([...withServers].filter((name) => here.has(name))).toEqual([]);
    expect([...withServers].filter((name) => !memory.has(name) && !mysql.has(name))).toEqual([]);
  });
}

/** Stands for a runner's servers in a selection that opens none. */
async function noServers(): Promise<CaseServers> {
  throw new Error("not opened: a selection only");
}

/**
 * A case with servers of its own gets 60 s (it starts servers, restarts
 * them, writes a burst for a slow reader); others the suite's default. A
 * case that outlives its bound would go on writing next to the next case.
 */
function timeoutOf(contractCase: ContractCase): number | undefined {
  return contractCase.servers ? 60_000 : undefined;
}

/** The servers of a case that needs its own, with its tokens and settings. */
function openServersFor(contractCase: ContractCase, servers: RunnerServers): Promise<CaseServers> {
  const tokens = contractCase.tokens;
  const tokenLines = tokens === undefined ? undefined : tokenFileLines(Object.values(tokens));
  return servers.open(tokenLines, caseSettings(contractCase.settings));
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
 * one test accounts for them (remoteOnlyAccounted). `servers` is given by
 * the remote runners that own their servers: the cases that need servers of
 * their own (watch steps) run on them, those of another backend are left
 * out (otherBackendsAccounted); a remote runner without it leaves out the
 * former (serverCasesAccounted).
 */
export function runStoreContract(
  name: string,
  open: () => Promise<StoreHandle>,
  openScoped?: OpenScoped,
  servers?: RunnerServers,
): void {
  describe(`RunStore contract: ${name}`, () => {
    // What a store must never do while handling model names or JSON keys.
    const prototypeKeys = Object.getOwnPropertyNames(Object.prototype).sort();
    const prototypeUntouched = () =>
      expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeKeys);

    const remote = openScoped !== undefined;
    const selected = remote ? casesForRunner(CASE_FILES, servers) : casesRunBy(CASE_FILES, false);
    for (const file of selected) {
      if (file.cases.length === 0) continue;
      describe(file.spec, () => {
        for (const contractCase of file.cases) {
          it(
            contractCase.name,
            async () => {
              if (contractCase.servers) {
                const caseServers = await openServersFor(contractCase, servers as RunnerServers);
                try {
                  await runCase(caseServers, contractCase);
                } finally {
                  await caseServers.close();
                }
              } else {
                const { handle, stores } = await openFor(
                  contractCase,
                  open,
                  openScoped as OpenScoped,
                );
                try {
                  await runCase(stores, contractCase);
                } finally {
                  await handle.close();
                }
              }
              prototypeUntouched();
            },
            timeoutOf(contractCase),
          );
        }
      });
    }

    if (!remote) remoteOnlyAccounted();
    else if (servers === undefined) serverCasesAccounted();
    else otherBackendsAccounted(servers);

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
