import { type RemoteProtocol, RemoteRunStore, type RunStore } from "@runstore/client";
import { parseTokenFile } from "../../src/auth/token-grants.js";
import { startServer } from "../../src/server.js";
import { ADMIN_TOKEN } from "./case-tokens.js";
import type { ScopedHandle } from "./run-store-contract.js";

/**
 * A real server on port 0 in front of `backend` that requires the tokens of
 * `tokenLines` (AUTH_TOKENS_FILE lines, read as the server reads that file),
 * and a RemoteRunStore over `protocol` for each token a case calls with.
 * close() closes the clients and the server.
 */
export async function openScopedRemote(
  backend: RunStore,
  protocol: RemoteProtocol,
  tokenLines: readonly string[],
): Promise<ScopedHandle> {
  const tokens = parseTokenFile(tokenLines.join("\n"), "contract tokens");
  const server = await startServer({ store: backend, port: 0, tokens });
  const clients = new Map<string, RemoteRunStore>();
  const withToken = (token: string): RemoteRunStore => {
    let client = clients.get(token);
    if (client === undefined) {
      client = new RemoteRunStore({ baseUrl: server.url, protocol, token });
      clients.set(token, client);
    }
    return client;
  };
  return {
    store: withToken(ADMIN_TOKEN),
    withToken,
    async close() {
      for (const client of clients.values()) client.close();
      await server.close();
    },
  };
}
