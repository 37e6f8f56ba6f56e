import { type RemoteProtocol, RemoteRunStore, type RunStore } from "@runstore/client";
import { parseTokenFile } from "../../src/auth/token-grants.js";
import { type RunningServer, type ServerOptions, startServer } from "../../src/server.js";
import { CONTRACT_OVERLOAD } from "../support/remote.js";
import { serverSettings } from "./case-settings.js";

// The servers of a case that needs its own (cases/README.md, "Watch
// steps"): replica "a" from the start, "b" on first use, each a real HTTP/2
// server on its own store; stopped and started again on the same port (a
// restart), so the clients of the case reach the new server at the same URL.

/** A store a server (replica) starts on, and how to dispose of it after the server. */
export interface CaseStore {
  store: RunStore;
  close(): Promise<void>;
}

/**
 * Where a runner's servers keep their runs: a store for replica `replica`,
 * on every start (a restart on memory gets a new, empty store; on MySQL a
 * new pool on the same database).
 */
export type OpenCaseStore = (
  replica: string,
  settings: Record<string, number>,
) => Promise<CaseStore>;

/** The servers a case's steps talk to, owned by the runner. */
export interface CaseServers {
  /** The store calls go through on `replica`, with bearer `token` (undefined: none). */
  store(replica: string, token: string | undefined): RunStore;
  /** The protocol the case's clients speak (and its watch streams, raw-watch-stream.ts). */
  readonly protocol: RemoteProtocol;
  /** The URL of `replica`'s server. */
  urlOf(replica: string): string;
  /** Stops `replica`'s server (graceful, no grace for calls in flight) and closes its store. */
  stop(replica: string): Promise<void>;
  /** Starts `replica`'s server again, on the same port, on a store of OpenCaseStore. */
  start(replica: string): Promise<void>;
  /** Closes the clients, every server and store. */
  close(): Promise<void>;
}

/** What one case's servers start with. */
export interface CaseServerOptions {
  protocol: RemoteProtocol;
  openStore: OpenCaseStore;
  /** AUTH_TOKENS_FILE lines; undefined: the servers require no token. */
  tokenLines?: readonly string[];
  /** The case's settings (WATCH_WINDOW, …) over the runners' defaults. */
  settings: Record<string, number>;
}

interface Replica {
  server: RunningServer | null;
  store: CaseStore | null;
  port: number;
}

/** Starts replica "a" of a case; "b" starts when a step first names it. */
export async function openCaseServers(options: CaseServerOptions): Promise<CaseServers> {
  const serverOptions: Partial<ServerOptions> = {
    ...serverSettings(options.settings),
    tokens:
      options.tokenLines === undefined
        ? undefined
        : parseTokenFile(options.tokenLines.join("\n"), "contract tokens"),
  };
  const replicas = new Map<string, Replica>();
  const clients = new Map<string, RemoteRunStore>();

  const start = async (name: string, replica: Replica) => {
    replica.store = await options.openStore(name, options.settings);
    const server = await startServer({
      overload: CONTRACT_OVERLOAD,
      ...serverOptions,
      store: replica.store.store,
      port: replica.port,
    });
    replica.server = server;
    replica.port = server.port;
  };
  const replicaOf = async (name: string): Promise<Replica> => {
    let replica = replicas.get(name);
    if (replica === undefined) {
      replica = { server: null, store: null, port: 0 };
      replicas.set(name, replica);
      await start(name, replica);
    }
    return replica;
  };
  const stop = async (replica: Replica) => {
    await replica.server?.close(0);
    await replica.store?.close();
    replica.server = null;
    replica.store = null;
  };
  const urlOf = (name: string) => {
    const replica = replicas.get(name);
    if (replica === undefined) throw new Error(`replica ${name} was never started`);
    return `http://127.0.0.1:${replica.port}`;
  };

  await replicaOf("a");
  return {
    store(name, token) {
      const key = `${name} ${token ?? ""}`;
      let client = clients.get(key);
      if (client === undefined) {
        client = new RemoteRunStore({ baseUrl: urlOf(name), protocol: options.protocol, token });
        clients.set(key, client);
      }
      return client;
    },
    protocol: options.protocol,
    urlOf,
    async stop(name) {
      await stop(await replicaOf(name));
    },
    async start(name) {
      const replica = await replicaOf(name);
      if (replica.server === null) await start(name, replica);
    },
    async close() {
      for (const client of clients.values()) client.close();
      for (const replica of replicas.values()) await stop(replica);
    },
  };
}
