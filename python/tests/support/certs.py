"""PEM material for TLS tests, made with openssl in a temporary directory."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .requirements import missing

__all__ = ["SERVER_NAME", "CertFiles", "make_certs"]

#: A name in the server certificate (besides "localhost"; not 127.0.0.1), for
#: a client connecting to 127.0.0.1 to set as server_name.
SERVER_NAME = "runstore.test"


@dataclass
class CertFiles:
    """A CA, a server and a client certificate it signed, and a stranger's
    client certificate signed by a CA the server does not trust."""

    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name

    def read(self, name: str) -> bytes:
        return (self.dir / name).read_bytes()

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _authority(cwd: Path, name: str) -> None:
    _openssl(cwd, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
             "-subj", f"/CN={name}", "-keyout", f"{name}.key", "-out", f"{name}.crt")


def _leaf(cwd: Path, name: str, ca: str, extensions: str) -> None:
    _openssl(cwd, "req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
             "-keyout", f"{name}.key", "-out", f"{name}.csr")
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl(cwd, "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt")


def make_certs() -> CertFiles:
    """ca.crt, server.crt/key (SERVER_NAME, localhost), client.crt/key, stranger.crt/key."""
    if shutil.which("openssl") is None:
        missing("TLS", "openssl is not on PATH")
    cwd = Path(tempfile.mkdtemp(prefix="runstore-py-certs-"))
    _authority(cwd, "ca")
    _authority(cwd, "other-ca")
    server_extensions = f"subjectAltName=DNS:{SERVER_NAME},DNS:localhost\nextendedKeyUsage=serverAuth\n"
    _leaf(cwd, "server", "ca", server_extensions)
    _leaf(cwd, "client", "ca", "extendedKeyUsage=clientAuth\n")
    _leaf(cwd, "stranger", "other-ca", "extendedKeyUsage=clientAuth\n")
    return CertFiles(cwd)
