import { createConnection, createServer, type Server, type Socket } from "node:net";

/** How the proxy treats traffic right now. */
export type ProxyMode = "forward" | "cut" | "freeze";

/**
 * A TCP proxy the test controls, between the server and MariaDB, to inject
 * outages: "cut" closes every connection and refuses new ones (database
 * down), "freeze" keeps sockets open but forwards nothing (a hung database:
 * the half-open case), "forward" passes bytes through.
 */
export class TcpProxy {
  private readonly server: Server;
  private readonly pairs = new Set<[Socket, Socket]>();
  private readonly held = new Set<Socket>();
  mode: ProxyMode = "forward";
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {
    this.server = createServer((client) => this.accept(client));
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  /** Database down: close every connection, refuse new ones until forward(). */
  cut(): void {
    this.mode = "cut";
    for (const [a, b] of this.pairs) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  /** Database hung: keep every socket open, pass nothing either way. */
  freeze(): void {
    this.mode = "freeze";
    for (const [a, b] of this.pairs) {
      a.pause();
      b.pause();
      this.held.add(a);
    }
  }

  /** Back to normal. Connections frozen meanwhile are dropped, as a recovered network would reset them. */
  forward(): void {
    this.mode = "forward";
    for (const socket of this.held) socket.destroy();
    this.held.clear();
  }

  async close(): Promise<void> {
    this.cut();
    for (const socket of this.held) socket.destroy();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private accept(client: Socket): void {
    if (this.mode === "cut") {
      client.destroy();
      return;
    }
    if (this.mode === "freeze") {
      client.pause();
      this.held.add(client);
      return;
    }
    const upstream = createConnection({ host: this.targetHost, port: this.targetPort });
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const drop = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on("error", drop).on("close", drop);
    upstream.on("error", drop).on("close", drop);
    client.pipe(upstream);
    upstream.pipe(client);
  }
}
