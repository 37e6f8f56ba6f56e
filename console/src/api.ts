import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-web";
import { RunStoreService } from "../../client/src/gen/runstore/v1/run_store_pb.js";
import { readToken } from "./token.js";

/** The RunStoreService client every page calls. */
export type Api = Client<typeof RunStoreService>;

/** Adds the tab's bearer token (token.ts) as the Authorization header of every call. */
const bearer: Interceptor = (next) => (req) => {
  const token = readToken();
  if (token !== null && token !== "") req.header.set("authorization", `Bearer ${token}`);
  return next(req);
};

/**
 * RunStoreService over the Connect protocol from the page's own origin: the
 * server that serves the console serves the service's routes too, so the
 * Content-Security-Policy's connect-src 'self' holds.
 */
export const api: Api = createClient(
  RunStoreService,
  createConnectTransport({ baseUrl: window.location.origin, interceptors: [bearer] }),
);
