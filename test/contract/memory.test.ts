import { MemoryRunStore } from "../../src/stores/memory-run-store.js";
import { runStoreContract } from "./run-store-contract.js";

runStoreContract("MemoryRunStore in-process", async () => ({
  store: new MemoryRunStore(),
  close: async () => {},
}));
