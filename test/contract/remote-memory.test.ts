import type { RemoteProtocol } from "@runstore/client";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { openRemote } from "../support/remote.js";
import { openCaseServers } from "./case-servers.js";
import { runStoreContract } from "./run-store-contract.js";
import { openScopedRemote } from "./scoped-server.js";

// RemoteRunStore → real HTTP/2 server on port 0 → MemoryRunStore, once per
// protocol; a case with tokens gets a server requiring them; a case with
// watch steps gets servers of its own, each (re)start on a new, empty store.
for (const protocol of ["grpc", "connect", "grpc-web"] as RemoteProtocol[]) {
  runStoreContract(
    `RemoteRunStore (${protocol}) → server → MemoryRunStore`,
    () => openRemote(new MemoryRunStore(), protocol),
    (tokenLines) => openScopedRemote(new MemoryRunStore(), protocol, tokenLines),
    {
      backend: "memory",
      open: (tokenLines, settings) =>
        openCaseServers({
          protocol,
          tokenLines,
          settings,
          openStore: async (_replica, { WATCH_LOG_MAX }) => ({
            store: new MemoryRunStore({ watchLogMax: WATCH_LOG_MAX }),
            close: async () => {},
          }),
        }),
    },
  );
}
