import { createServer, type Server, type Socket } from "node:net";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MysqlRunStore } from "../../src/stores/mysql-run-store.js";
import { failureOf } from "../support/failure.js";
import { openRemote } from "../support/remote.js";

// docs/contract.md "Errors": the database cannot be reached → UNAVAILABLE (retryable),
// in-process and over the wire, with no credentials in the message.

/** A TCP server that accepts connections and never answers: a frozen database. */
let silent: Server;
const sockets = new Set<Socket>();
let silentPort: number;

beforeAll(async () => {
  silent = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
  silentPort = (silent.address() as { port: number }).port;
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => silent.close(resolve));
});

describe("database unreachable → UNAVAILABLE", () => {
  it("a refused connection, in-process", async () => {
    const store = MysqlRunStore.open({ url: "mysql://root:hunter2@127.0.0.1:1/runstore" });
    try {
      const error = await failureOf(store.get("r1"));
      expect(error.code).toBe(Code.Unavailable);
      expect(error.rawMessage).toBe("database unavailable");
    } finally {
      await store.close();
    }
  });

  it("a database that never answers, bounded by the connect timeout", async () => {
    // The query timeout is far beyond the test's own timeout: only the
    // connect timeout can end this call in time.
    const store = MysqlRunStore.open({
      url: `mysql://root:hunter2@127.0.0.1:${silentPort}/runstore`,
      connectTimeoutMs: 300,
      queryTimeoutMs: 600_000,
    });
    try {
      const began = performance.now();
      const error = await failureOf(store.updateStatus("r1", "running"));
      console.log(
        `REPORT unavailable: a silent database refused in ${Math.round(performance.now() - began)} ms (connect timeout 300 ms)`,
      );
      expect(error.code).toBe(Code.Unavailable);
    } finally {
      await store.close();
    }
  });

  it("over the wire: UNAVAILABLE reaches the remote caller, without the password", async () => {
    const backend = MysqlRunStore.open({ url: "mysql://root:hunter2@127.0.0.1:1/runstore" });
    const remote = await openRemote(backend, "grpc");
    try {
      const error = await failureOf(remote.store.listInflight());
      expect(error.code).toBe(Code.Unavailable);
      expect(error.message).not.toContain("hunter2");
      expect(error.message).not.toContain("127.0.0.1:1");
    } finally {
      await remote.close();
      await backend.close();
    }
  });
});
