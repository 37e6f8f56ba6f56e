import type { MessageInitShape } from "@bufbuild/protobuf";
import type { RunStore } from "@runstore/client";
import { pb } from "@runstore/client/internal";
import { c, type Seen } from "./watch-support.js";

// The filter cases of WatchRuns (docs/contract.md, "Live changes"), shared
// by the memory and MySQL watch tests: one script of nine changes and, for
// each filter, the exact changes a watcher gets, left_filter included.

/** A WatchRuns request. */
export type Request = MessageInitShape<typeof pb.WatchRunsRequestSchema>;

/** The script: 9 changes, numbered 1 to 9. */
export async function script(store: RunStore): Promise<void> {
  await store.put("r1", { threadId: "t1", userId: "u1" }); // 1
  await store.put("r2", { threadId: "t2", userId: "u2" }); // 2
  await store.updateStatus("r1", "running"); // 3
  await store.updateRunCompletion("r1", { status: "success" }); // 4
  await store.put("r3", { threadId: "t1", userId: "u1", operationKind: "checkpoint_write" }); // 5
  await store.updateStatus("r2", "error"); // 6
  await store.delete("r2"); // 7
  await store.put("r4", { threadId: "t1", status: "success" }); // 8: no owner
  await store.put("r5", { threadId: "t2", userId: "u1", status: "running" }); // 9
}

/** Name, request, the changes it gets (sequences 1 to 9 on a fresh log). */
export const CASES: [string, Request, Seen[]][] = [
  [
    "no filter: every run",
    {},
    [
      c("created", 1, "r1", "pending"),
      c("created", 2, "r2", "pending"),
      c("updated", 3, "r1", "running"),
      c("updated", 4, "r1", "success"),
      c("updated", 6, "r2", "error"),
      c("deleted", 7, "r2", "error"),
      c("created", 8, "r4", "success"),
      c("created", 9, "r5", "running"),
    ],
  ],
  [
    "user_id",
    { userId: "u1" },
    [
      c("created", 1, "r1", "pending"),
      c("updated", 3, "r1", "running"),
      c("updated", 4, "r1", "success"),
      c("created", 9, "r5", "running"),
    ],
  ],
  [
    "thread_id",
    { threadId: "t1" },
    [
      c("created", 1, "r1", "pending"),
      c("updated", 3, "r1", "running"),
      c("updated", 4, "r1", "success"),
      c("created", 8, "r4", "success"),
    ],
  ],
  [
    "statuses [running]: a run that finishes leaves",
    { statuses: [pb.RunStatus.RUNNING] },
    [
      c("updated", 3, "r1", "running"),
      c("updated", 4, "r1", "success", true),
      c("created", 9, "r5", "running"),
    ],
  ],
  [
    "statuses [error, success]",
    { statuses: [pb.RunStatus.ERROR, pb.RunStatus.SUCCESS] },
    [
      c("updated", 4, "r1", "success"),
      c("updated", 6, "r2", "error"),
      c("deleted", 7, "r2", "error"),
      c("created", 8, "r4", "success"),
    ],
  ],
  [
    "active_only",
    { activeOnly: true },
    [
      c("created", 1, "r1", "pending"),
      c("created", 2, "r2", "pending"),
      c("updated", 3, "r1", "running"),
      c("updated", 4, "r1", "success", true),
      c("updated", 6, "r2", "error", true),
      c("created", 9, "r5", "running"),
    ],
  ],
  [
    "active_only and user_id",
    { activeOnly: true, userId: "u2" },
    [c("created", 2, "r2", "pending"), c("updated", 6, "r2", "error", true)],
  ],
  [
    "operation_kinds [checkpoint_write]",
    { operationKinds: [pb.OperationKind.CHECKPOINT_WRITE] },
    [c("created", 5, "r3", "pending")],
  ],
  [
    "operation_kinds [run, checkpoint_write] and thread_id",
    { operationKinds: [pb.OperationKind.RUN, pb.OperationKind.CHECKPOINT_WRITE], threadId: "t1" },
    [
      c("created", 1, "r1", "pending"),
      c("updated", 3, "r1", "running"),
      c("updated", 4, "r1", "success"),
      c("created", 5, "r3", "pending"),
      c("created", 8, "r4", "success"),
    ],
  ],
];
