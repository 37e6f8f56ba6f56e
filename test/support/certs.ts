import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** PEM material made for one test run with Debian's openssl. */
export interface TestCerts {
  dir: string;
  ca: Buffer;
  serverCert: Buffer;
  serverKey: Buffer;
  clientCert: Buffer;
  clientKey: Buffer;
  /** A client certificate signed by a CA the server does not trust. */
  strangerCert: Buffer;
  strangerKey: Buffer;
  remove(): void;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
}

function authority(dir: string, name: string): void {
  openssl(
    dir,
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    `/CN=${name}`,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.crt`,
  );
}

function leaf(dir: string, name: string, ca: string, ext: string): void {
  openssl(
    dir,
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    `/CN=${name}`,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
  );
  writeFileSync(join(dir, `${name}.ext`), ext);
  openssl(
    dir,
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.crt`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.crt`,
  );
}

/** A CA, a server certificate for 127.0.0.1 / localhost, a client certificate, and a stranger's. */
export function makeTestCerts(): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), "runstore-certs-"));
  authority(dir, "ca");
  authority(dir, "stranger-ca");
  leaf(
    dir,
    "server",
    "ca",
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
  );
  leaf(dir, "client", "ca", "extendedKeyUsage=clientAuth\n");
  leaf(dir, "stranger", "stranger-ca", "extendedKeyUsage=clientAuth\n");
  const read = (file: string) => readFileSync(join(dir, file));
  return {
    dir,
    ca: read("ca.crt"),
    serverCert: read("server.crt"),
    serverKey: read("server.key"),
    clientCert: read("client.crt"),
    clientKey: read("client.key"),
    strangerCert: read("stranger.crt"),
    strangerKey: read("stranger.key"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
