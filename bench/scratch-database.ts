import { createConnection } from "mysql2/promise";
import { serverPid } from "./server-pid.js";

// A scratch database on the bench's MariaDB/MySQL server for one run of a
// step (capacity, lifecycles): created at the start, dropped at the end.

/** The server the bench's MySQL steps use (BENCH_MYSQL_URL, default the local MariaDB). */
export const MYSQL_SERVER = process.env.BENCH_MYSQL_URL ?? "mysql://root@127.0.0.1:3306";

export interface ScratchDatabase {
  /** The database's URL, for the server's DATABASE_URL. */
  url: string;
  /** The database server's pid for its CPU, when it runs on this machine; else null. */
  dbPid: number | null;
  /** Drops the database and closes the admin connection. */
  drop(): Promise<void>;
}

/** A fresh database named `name`, or null when `used` is false (no MySQL step in this run). */
export async function scratchDatabase(
  name: string,
  used: boolean,
): Promise<ScratchDatabase | null> {
  if (!used) return null;
  const admin = await createConnection({ uri: MYSQL_SERVER });
  await admin.query(`CREATE DATABASE \`${name}\``);
  const local = ["127.0.0.1", "localhost", "[::1]"].includes(new URL(MYSQL_SERVER).hostname);
  return {
    url: `${MYSQL_SERVER}/${name}`,
    dbPid: local ? await serverPid(MYSQL_SERVER) : null,
    drop: async () => {
      await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await admin.end();
    },
  };
}
