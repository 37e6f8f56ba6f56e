// Types for galera-cluster.mjs, which stays plain JavaScript (no dependencies).

/** The Debian packages the cluster needs. */
export const GALERA_PACKAGES: string[];
/** Where Debian's galera-4 puts the wsrep provider. */
export const GALERA_PROVIDER: string;

/** One node of a cluster. */
export interface GaleraNode {
  index: number;
  /** mysql://root@127.0.0.1:PORT (no database part). */
  url: string;
  /** The running mariadbd's process id; null while the node is killed. */
  readonly pid: number | null;
  dir: string;
  /** The node's error log. */
  log: string;
}

/** A local Galera cluster (scripts/galera-cluster.mjs). */
export interface GaleraCluster {
  /** The temporary directory holding every node's files. */
  dir: string;
  /** Each node's URL, node 0 first. */
  readonly urls: string[];
  readonly nodes: GaleraNode[];
  /** How long start() took, in milliseconds; null before it finished. */
  readonly startedInMs: number | null;
  /** Resolves once the cluster is Primary with every node Synced. */
  start(): Promise<void>;
  /** SIGKILL node `index`; resolves once it exited. */
  kill(index: number): Promise<void>;
  /** Starts node `index` again; resolves once every running node is Synced in a cluster of them all. */
  restart(index: number): Promise<void>;
  /** Kills every node and removes the files; safe to call twice. */
  stop(): Promise<void>;
  /** stop(), synchronously, for process exit. */
  stopNow(): void;
}

export function galeraCluster(options?: { size?: number }): GaleraCluster;
export function startGaleraCluster(options?: { size?: number }): Promise<GaleraCluster>;
