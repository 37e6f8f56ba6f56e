import { spawn } from "node:child_process";
import { resolve } from "node:path";
import { serve } from "./serve.js";

// The TypeScript caller's CPU per call at fixed rates (issue 18), for two
// builds of the client side by side in the same run:
//   node --conditions=source --import tsx bench/caller-cpu.ts \
//     [--rates 0,50,400,1600] [--seconds 10] [--rounds 2] [--clients a=path/index.ts,b=...]
// Each measurement is its own caller process (bench/caller-cpu-worker.ts)
// against one in-memory server: it connects, warms up 2 s at the rate, then
// reads its own process.cpuUsage() over the window and divides by the calls
// answered in it. Rate 0 is an idle client (one call, then nothing): its CPU
// per second, which should be about zero. Variants alternate within a round,
// so a noisy neighbour hits both.

interface Args {
  rates: number[];
  seconds: number;
  rounds: number;
  clients: [string, string][];
}

function parseArgs(argv: string[]): Args {
  const get = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i < 0 ? undefined : argv[i + 1];
  };
  const clients = (get("clients") ?? `new=${resolve("client/src/index.ts")}`)
    .split(",")
    .map((pair) => pair.split("=") as [string, string]);
  return {
    rates: (get("rates") ?? "0,50,400,1600").split(",").map(Number),
    seconds: Number(get("seconds") ?? 10),
    rounds: Number(get("rounds") ?? 2),
    clients,
  };
}

/** One worker's figure: µs of CPU per call (per second when idle) and the rate it achieved. */
function measure(client: string, url: string, rate: number, seconds: number) {
  const worker = resolve("bench/caller-cpu-worker.ts");
  const args = ["--conditions=source", "--import", "tsx", worker, client, url, String(rate)];
  return new Promise<{ cpuUs: number; calls: number; failed: number; idle: number }>(
    (done, fail) => {
      const child = spawn(process.execPath, [...args, String(seconds)], {
        stdio: ["ignore", "pipe", "inherit"],
      });
      let out = "";
      child.stdout.on("data", (chunk: Buffer) => {
        out += chunk.toString();
      });
      child.once("exit", (code) => {
        if (code === 0) done(JSON.parse(out));
        else fail(new Error(`worker exited ${code}: ${out}`));
      });
    },
  );
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const server = await serve("runstore-memory", ["dist/main.js"], {});
  const rows: string[] = [];
  try {
    for (const rate of args.rates) {
      for (let round = 0; round < args.rounds; round++) {
        for (const [name, client] of args.clients) {
          const r = await measure(client, server.url, rate, args.seconds);
          const perCall = rate === 0 ? r.cpuUs / args.seconds : r.cpuUs / Math.max(1, r.calls);
          const row = `rate ${rate}/s round ${round + 1} ${name}: ${Math.round(perCall)} µs/${
            rate === 0 ? "s idle" : "call"
          } (${(r.calls / args.seconds).toFixed(0)} calls/s answered, ${r.failed} failed, machine idle ${r.idle} %)`;
          rows.push(row);
          console.log(row);
        }
      }
    }
  } finally {
    server.child.kill("SIGKILL");
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
