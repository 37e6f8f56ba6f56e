import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import { RunStoreService } from "@runstore/client";
import { pb } from "@runstore/client/internal";
import { file_grpc_health_v1_health } from "./gen/grpc/health/v1/health_pb.js";
import { type HealthMonitor, healthRoutes } from "./health.js";
import { reflectionRoutes } from "./reflection.js";

/**
 * The server's one route table, for startServer and for tests that mount it
 * on a server of their own: RunStoreService, gRPC health answering from
 * `health`, and server reflection (what grpcurl, buf curl, grpcui and
 * Postman discover) for both.
 */
export function routes(service: ServiceImpl<typeof RunStoreService>, health: HealthMonitor) {
  const reflection = reflectionRoutes([pb.file_runstore_v1_run_store, file_grpc_health_v1_health]);
  return (router: ConnectRouter) => {
    router.service(RunStoreService, service);
    healthRoutes(health)(router);
    reflection(router);
  };
}
