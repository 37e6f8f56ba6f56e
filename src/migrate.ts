import { ConfigError, readConfig, redactUrl } from "./config.js";
import { migrate } from "./stores/mysql-migrations.js";

// `npm run migrate`: applies pending migrations to DATABASE_URL and exits.

try {
  const config = readConfig();
  if (config.database === null)
    throw new ConfigError("DATABASE_URL is not set: nothing to migrate");
  const applied = await migrate(config.database);
  console.error(
    `runstore: ${redactUrl(config.database.url)}: ${applied.length === 0 ? "already up to date" : `applied ${applied.join(", ")}`}`,
  );
} catch (error) {
  console.error(
    `runstore: migrate failed: ${error instanceof Error ? error.message : String(error)}`,
  );
  process.exit(error instanceof ConfigError ? 2 : 1);
}
