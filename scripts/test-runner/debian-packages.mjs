// The Debian packages the suites need: checked with dpkg-query, installed
// through apt when this process may (root, or sudo without a password).
import { execFileSync, spawnSync } from "node:child_process";
import { GALERA_PACKAGES } from "../galera-cluster.mjs";

/**
 * The packages a run needs. `parts` are the parts that run ("python",
 * "mysql", "galera"); `privateMysql` is false when TEST_MYSQL_URL names a server.
 * protobuf-compiler and friends are not here: only .ci/run's generated-code
 * check needs them.
 */
export function neededPackages({ parts, privateMysql }) {
  const packages = ["openssl"]; // TLS certificates for the TS and Python tests
  // The run console's browser tests (test/console): Debian's Chromium, driven
  // by playwright-core (no browser download), and a font for its screenshots.
  packages.push("chromium", "fonts-dejavu-core");
  if (parts.has("python")) {
    // The client's runtime, and venv + setuptools + wheel for the offline
    // `pip install ./python` test (from Python 3.12 a venv brings no setuptools).
    packages.push(
      "python3",
      "python3-grpcio",
      "python3-protobuf",
      "python3-venv",
      "python3-setuptools",
      "python3-wheel",
    );
  }
  if (parts.has("mysql")) {
    // The mysql CLI (Python tests, readiness probe). The -core packages: the
    // full mariadb-server would also install and start a system service.
    packages.push("mariadb-client-core");
    if (privateMysql) packages.push("mariadb-server-core"); // mariadb-install-db, mariadbd
  }
  if (parts.has("galera")) {
    // The local Galera cluster (scripts/galera-cluster.mjs): galera-4's
    // provider, and mariadb-server's wsrep_sst_rsync for state transfer
    // (the full package: it also installs a system service, and the
    // `mysql` account the nodes run as when the run is root's).
    packages.push(...GALERA_PACKAGES.filter((name) => !packages.includes(name)));
  }
  return packages;
}

/** False off Debian and Ubuntu, where there are no Debian packages to check. */
export function hasDpkg() {
  return spawnSync("dpkg-query", ["--version"], { stdio: "ignore" }).error === undefined;
}

/** The names in `packages` that dpkg does not list as installed. */
export function missingPackages(packages) {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's format, not JavaScript's
  const format = "-f=${Package} ${Status}\\n";
  const result = spawnSync("dpkg-query", ["-W", format, ...packages], { encoding: "utf8" });
  if (result.error !== undefined) {
    throw new Error(`cannot check Debian packages: ${result.error.message}`);
  }
  // dpkg-query prints a line for each known package and complains about the others.
  const installed = new Set(
    result.stdout
      .split("\n")
      .filter((line) => line.endsWith(" ok installed"))
      .map((line) => line.split(" ")[0].split(":")[0]),
  );
  return packages.filter((name) => !installed.has(name));
}

/** How this process may run apt: directly (root), through sudo, or not at all. */
export function aptPrefix() {
  if (process.getuid?.() === 0) return [];
  const sudo = spawnSync("sudo", ["-n", "true"], { stdio: "ignore" });
  return sudo.status === 0 ? ["sudo", "-n"] : null;
}

/**
 * Installs `missing` through apt, or throws with one line naming the packages
 * and the command when this process may not.
 */
export function installPackages(missing, prefix = aptPrefix()) {
  if (missing.length === 0) return;
  const list = missing.join(" ");
  if (prefix === null) {
    throw new Error(
      `missing Debian packages: ${list}; install them with: sudo apt-get install -y ${list}`,
    );
  }
  console.log(`installing Debian packages: ${list}`);
  // Through env(1): sudo does not pass the caller's environment on.
  const apt = (...args) => {
    const [command, ...rest] = [
      ...prefix,
      "env",
      "DEBIAN_FRONTEND=noninteractive",
      "apt-get",
      ...args,
    ];
    execFileSync(command, rest, { stdio: ["ignore", "ignore", "inherit"] });
  };
  apt("update", "-qq");
  apt("install", "-y", "-qq", "--no-install-recommends", ...missing);
  const still = missingPackages(missing);
  if (still.length > 0) throw new Error(`apt-get did not install: ${still.join(" ")}`);
}
