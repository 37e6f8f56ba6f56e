import type * as http from "node:http";
import * as pbHealth from "./gen/grpc/health/v1/health_pb.js";
import type { HealthMonitor } from "./health.js";

const { SERVING } = pbHealth.HealthCheckResponse_ServingStatus;

/** What /readyz answers: ready, or the one reason it is not. */
export type Readiness = "ready" | "draining" | "store unavailable";

/**
 * Ready while the store answers the health monitor's probe and the server
 * is not draining. Draining comes first: from the moment close() begins,
 * readiness fails whatever the store says, so a load balancer stops sending
 * new calls while in-flight ones finish.
 */
export function readiness(health: HealthMonitor): Readiness {
  if (health.draining) return "draining";
  return health.current() === SERVING ? "ready" : "store unavailable";
}

/**
 * Answers GET /healthz (200 while the process answers at all: a liveness
 * probe never looks at the store, so a database outage does not get the
 * process restarted) and GET /readyz (200 when ready, else 503 with the
 * reason). Returns false for any other request, which the caller answers.
 */
export function answerProbe(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  path: string,
  health: HealthMonitor,
): boolean {
  if (req.method !== "GET") return false;
  if (path === "/healthz") {
    plain(res, 200, "ok");
    return true;
  }
  if (path === "/readyz") {
    const state = readiness(health);
    plain(res, state === "ready" ? 200 : 503, state);
    return true;
  }
  return false;
}

function plain(res: http.ServerResponse, status: number, body: string): void {
  res
    .writeHead(status, {
      "content-type": "text/plain; charset=utf-8",
      // A probe must see the state now, never a cached answer.
      "cache-control": "no-store",
    })
    .end(`${body}\n`);
}
