import { randomBytes } from "node:crypto";
import type { RunStore } from "@runstore/client";
import type { Pool } from "mysql2/promise";
import { inject } from "vitest";
import { migrate } from "../../src/stores/mysql-migrations.js";
import { createMysqlPool } from "../../src/stores/mysql-pool.js";
import {
  MysqlRunStore,
  type SqlConnection,
  type SqlPool,
} from "../../src/stores/mysql-run-store.js";

// What the test/galera files share: the cluster's node URLs (global-setup.ts),
// a database of a file's own on it, stores on each node, and a RunStore that
// sends each call to the next node.

/** Each node's URL (no database part), node 0 first. */
export const NODE_URLS: readonly string[] = inject("galeraUrls");

/** A database of one test file's own on the cluster, reached through every node. */
export interface ClusterDatabase {
  name: string;
  /** The database's URL on each node. */
  urls: string[];
  /** A MysqlRunStore on each node (its own pools), closed by drop(). */
  openStores(options?: { poolSize?: number }): MysqlRunStore[];
  /** A SQL pool on node `index`'s database, ended by drop(). */
  pool(index: number): Pool;
  /** Empties the runs table (through node 0), so each test starts from nothing. */
  truncate(): Promise<void>;
  /** Closes what it opened and drops the database. */
  drop(): Promise<void>;
}

/**
 * A fresh database on the cluster (created through node 0; Galera
 * replicates the DDL), migrated unless `migrate` is false.
 */
export async function createClusterDatabase(
  label: string,
  options = { migrate: true },
): Promise<ClusterDatabase> {
  const name = `rs_galera_${label}_${randomBytes(4).toString("hex")}`;
  const urls = NODE_URLS.map((node) => `${node}/${name}`);
  const admin = createMysqlPool({ url: NODE_URLS[0] ?? "" }, { connectionLimit: 1 }).promise();
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`);
  if (options.migrate) await migrate({ url: urls[0] ?? "" });
  const stores: MysqlRunStore[] = [];
  const pools = new Map<number, Pool>();
  const pool = (index: number): Pool => {
    let found = pools.get(index);
    if (found === undefined) {
      found = createMysqlPool({ url: urls[index] ?? "" }, { connectionLimit: 2 }).promise();
      pools.set(index, found);
    }
    return found;
  };
  return {
    name,
    urls,
    openStores(storeOptions = {}) {
      const opened = urls.map((url) => MysqlRunStore.open({ url, poolSize: 4, ...storeOptions }));
      stores.push(...opened);
      return opened;
    },
    pool,
    async truncate() {
      await pool(0).query("TRUNCATE TABLE runs");
    },
    async drop() {
      await Promise.all(stores.map((store) => store.close()));
      await Promise.all([...pools.values()].map((p) => p.end()));
      await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await admin.end();
    },
  };
}

/**
 * A RunStore whose every call goes to the next of `stores` in turn, so
 * consecutive calls of a test land on different nodes (as calls spread by
 * clients over replicas, each on its own node, would).
 */
export function roundRobin(stores: readonly RunStore[]): RunStore {
  let next = 0;
  const first = stores[0];
  if (first === undefined) throw new Error("roundRobin needs at least one store");
  return new Proxy(first, {
    get(_target, property) {
      const value = Reflect.get(first, property);
      if (typeof value !== "function") return value;
      return (...args: unknown[]) => {
        const store = stores[next % stores.length] as RunStore;
        next += 1;
        return (Reflect.get(store, property) as (...a: unknown[]) => unknown).apply(store, args);
      };
    },
  });
}

/** How many statements failed with each errno, by store (certification conflicts are 1213). */
export type ErrnoCounts = Map<number, number>;

/**
 * A MysqlRunStore on `url` whose pool counts the errno of every statement
 * that fails into `counts` (the store itself is unchanged: it sees the
 * errors as thrown and retries as it always does). Close it yourself.
 */
export function countingStore(url: string, counts: ErrnoCounts, poolSize = 4): MysqlRunStore {
  const pool = createMysqlPool({ url, poolSize }).promise();
  const count = (error: unknown): never => {
    const errno = (error as { errno?: unknown }).errno;
    if (typeof errno === "number") counts.set(errno, (counts.get(errno) ?? 0) + 1);
    throw error;
  };
  const counted: SqlPool = {
    async getConnection(): Promise<SqlConnection> {
      const connection = await pool.getConnection();
      return {
        threadId: connection.threadId,
        execute: (options, values) => connection.execute(options, values).catch(count),
        query: (options) => connection.query(options).catch(count),
        release: () => connection.release(),
        destroy: () => connection.destroy(),
      };
    },
    end: () => pool.end(),
  };
  return new MysqlRunStore(counted, {}, createMysqlPool({ url }, { connectionLimit: 1 }).promise());
}
