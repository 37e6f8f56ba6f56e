import { type RemoteProtocol, RemoteRunStore, type RunStore } from "@runstore/client";
import { type RunningServer, type ServerOptions, startServer } from "../../src/server.js";
import type { StoreHandle } from "../contract/run-store-contract.js";

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
  const server = await startServer({ ...serverOptions, store: backend, port: 0 });
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
