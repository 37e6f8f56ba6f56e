import type { ConnectRouter } from "@connectrpc/connect";
import { type RunStore, RunStoreService } from "@runstore/client";
import { RunStoreServiceImpl } from "./service.js";

/** The server's routes: RunStoreService over the given store. */
export function routes(store: RunStore) {
  return (router: ConnectRouter) => router.service(RunStoreService, new RunStoreServiceImpl(store));
}
