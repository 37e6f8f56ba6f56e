import { type RemoteProtocol, RemoteRunStore, type RunStore } from "@runstore/client";
import { type RunningServer, type ServerOptions, startServer } from "../../src/server.js";
import type { StoreHandle } from "../contract/run-store-contract.js";

/**
 * The overload bounds of the servers the contract suite starts: its cases
 * send bursts (hundreds of puts at once) to check behaviour, not overload,
 * so every call may wait its turn. test/server/overload.test.ts checks the
 * bounds themselves.
 */
export const CONTRACT_OVERLOAD = { maxQueuedCalls: 1_000_000, queueTimeoutMs: 600_000 };

/** A real server on port 0 over the given store, and a RemoteRunStore talking to it. */
export interface RemoteHandle extends StoreHandle {
  store: RemoteRunStore;
  server: RunningServer;
}

/**
 * Starts a server on port 0 in front of `backend` and connects a
 * RemoteRunStore over real HTTP/2. close() closes the client and the server.
 */
export async function openRemote(
  backend: RunStore,
  protocol: RemoteProtocol,
  serverOptions: Partial<ServerOptions> = {},
): Promise<RemoteHandle> {
  const server = await startServer({
    overload: CONTRACT_OVERLOAD,
    ...serverOptions,
    store: backend,
    port: 0,
  });
  const store = new RemoteRunStore({ baseUrl: server.url, protocol });
  return {
    store,
    server,
    async close() {
      store.close();
      await server.close();
    },
  };
}
