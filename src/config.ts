/** The server's settings, read from the environment. */
export interface Config {
  host: string;
  port: number;
}

/** A setting that is present but wrong; main.ts prints the message and exits. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Reads and validates the settings; each bad value is named in the error. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const port = env.PORT === undefined || env.PORT === "" ? 50051 : Number(env.PORT);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new ConfigError(
      `PORT must be an integer from 0 to 65535, got ${JSON.stringify(env.PORT)}`,
    );
  }
  const host = env.HOST === undefined || env.HOST === "" ? "127.0.0.1" : env.HOST;
  return { host, port };
}
