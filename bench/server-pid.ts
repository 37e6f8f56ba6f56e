import { readFileSync } from "node:fs";
import { createConnection } from "mysql2/promise";

/**
 * The process id of the MariaDB / MySQL server behind `url`, read from the
 * pid file it names (@@pid_file), for its CPU per operation; null when that
 * file cannot be read here (a server on another machine). Asking the server
 * finds the right one among several local mariadbd processes (a Galera
 * cluster's nodes next to the system server).
 */
export async function serverPid(url: string): Promise<number | null> {
  const connection = await createConnection({ uri: url });
  try {
    const [rows] = await connection.query("SELECT @@pid_file AS file");
    const file = (rows as { file: string }[])[0]?.file ?? "";
    return Number(readFileSync(file, "utf8").trim()) || null;
  } catch {
    return null;
  } finally {
    await connection.end();
  }
}
