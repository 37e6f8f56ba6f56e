import { type RemoteProtocol, RemoteRunStore, type RunStore } from "@runstore/client";
import { parseTokenFile } from "../../src/auth/token-grants.js";
import { startServer } from "../../src/server.js";
import { CONTRACT_OVERLOAD } from "../support/remote.js";
import { ADMIN_TOKEN } from "./case-tokens.js";
import type { ScopedHandle } from "./run-store-contract.js";

/**
 * A real server on port 0 in front of `backend` that requires the tokens of
 * `tokenLines` (AUTH_TOKENS_FILE lines, read as the server reads that file),
 * and a RemoteRunStore over `protocol` for each token a case calls with.
 * Given several backends, a server (replica) in front of each, and clients
 * with every replica's URL. close() closes the clients and the servers.
 */
export async function openScopedRemote(
  backend: RunStore | readonly RunStore[],
  protocol: RemoteProtocol,
  tokenLines: readonly string[],
): Promise<ScopedHandle> {
  const tokens = parseTokenFile(tokenLines.join("\n"), "contract tokens");
  const backends = Array.isArray(backend) ? backend : [backend as RunStore];
  const servers = await Promise.all(
    backends.map((store) => startServer({ store, port: 0, tokens, overload: CONTRACT_OVERLOAD })),
  );
  const urls = servers.map((server) => server.url);
  const baseUrl = urls.length === 1 ? (urls[0] as string) : urls;
  const clients = new Map<string, RemoteRunStore>();
  const withToken = (token: string): RemoteRunStore => {
    let client = clients.get(token);
    if (client === undefined) {
      client = new RemoteRunStore({ baseUrl, protocol, token });
      clients.set(token, client);
    }
    return client;
  };
  return {
    store: withToken(ADMIN_TOKEN),
    withToken,
    async close() {
      for (const client of clients.values()) client.close();
      await Promise.all(servers.map((server) => server.close()));
    },
  };
}
