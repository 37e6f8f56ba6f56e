import type { RemoteProtocol } from "@runstore/client";
import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { openRemote } from "../support/remote.js";
import { runStoreContract } from "./run-store-contract.js";
import { openScopedRemote } from "./scoped-server.js";

// RemoteRunStore → real HTTP/2 server on port 0 → MemoryRunStore, once per
// protocol; a case with tokens gets a server requiring them.
for (const protocol of ["grpc", "connect", "grpc-web"] as RemoteProtocol[]) {
  runStoreContract(
    `RemoteRunStore (${protocol}) → server → MemoryRunStore`,
    () => openRemote(new MemoryRunStore(), protocol),
    (tokenLines) => openScopedRemote(new MemoryRunStore(), protocol, tokenLines),
  );
}
