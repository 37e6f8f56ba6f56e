import { Writable } from "node:stream";
import { pino } from "pino";
import { expect, it } from "vitest";
import { startTracing } from "../../src/tracing.js";

it("logs the OTLP endpoint without its password or query values", async () => {
  const lines: { msg: string; endpoint?: string }[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  const tracing = startTracing(
    {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:
        "http://spans:s3cret@127.0.0.1:4318/v1/traces?api_key=k3y",
    },
    pino({ level: "info" }, sink),
  );
  await tracing?.shutdown();
  expect(lines.filter((l) => l.msg === "tracing: exporting spans over OTLP/HTTP")).toEqual([
    expect.objectContaining({ endpoint: "http://spans:***@127.0.0.1:4318/v1/traces?api_key=***" }),
  ]);
  expect(JSON.stringify(lines)).not.toMatch(/s3cret|k3y/);
});
