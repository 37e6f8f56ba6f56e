"""The refused-certificate diagnosis keeps the client's private key off disk:
its ssl context is built once per connection, and the key is loaded from an
anonymous in-memory file (Linux) or from 0600 files in a private directory
that is gone once they are loaded."""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

import os  # noqa: E402
import socket  # noqa: E402
import ssl  # noqa: E402
import tempfile  # noqa: E402
import unittest  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402
from unittest import mock  # noqa: E402

import grpc  # noqa: E402

from runstore_client import TlsOptions, tls_refusal  # noqa: E402
from tests.support.certs import SERVER_NAME, CertFiles, make_certs  # noqa: E402


def _closed_port() -> int:
    """A local port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _not_connected() -> grpc.aio.AioRpcError:
    """gRPC's answer to a connection that failed in the handshake phase."""
    return grpc.aio.AioRpcError(
        grpc.StatusCode.UNAVAILABLE,
        grpc.aio.Metadata(),
        grpc.aio.Metadata(),
        details="failed to connect to all addresses; last error: UNKNOWN: Endpoint read failed",
    )


class KeyHandlingTest(unittest.IsolatedAsyncioTestCase):
    certs: CertFiles

    @classmethod
    def setUpClass(cls) -> None:
        cls.certs = make_certs()
        cls.addClassCleanup(cls.certs.remove)

    def setUp(self) -> None:
        # Every temporary file of the code under test goes here.
        folder = tempfile.TemporaryDirectory(prefix="tls-refusal-test-")
        self.addCleanup(folder.cleanup)
        self.temp = Path(folder.name)
        patcher = mock.patch.object(tempfile, "tempdir", folder.name)
        patcher.start()
        self.addCleanup(patcher.stop)

    def tls(self) -> TlsOptions:
        return TlsOptions(
            root_certificates=self.certs.read("ca.crt"),
            certificate_chain=self.certs.read("client.crt"),
            private_key=self.certs.read("client.key"),
            server_name=SERVER_NAME,
        )

    async def diagnose_twice(self) -> list[Any]:
        """Two failed connects on one connection object; the keys loaded, as load_cert_chain saw them."""
        loads: list[Any] = []
        real = ssl.SSLContext.load_cert_chain

        def recording(context: ssl.SSLContext, cert: str, key: str | None = None) -> None:
            path = Path(key or cert)
            loads.append((key, path.read_bytes(), path.stat().st_mode, path.parent.stat().st_mode))
            real(context, cert, key)

        refusals = tls_refusal.CertificateRefusals(f"127.0.0.1:{_closed_port()}", self.tls())
        with mock.patch.object(ssl.SSLContext, "load_cert_chain", recording):
            for _ in range(2):
                self.assertIsNone(await refusals.refusal(_not_connected()))
        return loads

    async def test_key_loaded_once_per_connection_from_memory(self) -> None:
        if getattr(os, "memfd_create", None) is None:
            self.skipTest("no memfd_create on this platform")
        loads = await self.diagnose_twice()
        self.assertEqual(len(loads), 1)
        key, data, _, _ = loads[0]
        self.assertRegex(key, r"^/proc/self/fd/\d+$")
        self.assertEqual(data, self.certs.read("client.key"))
        self.assertEqual(list(self.temp.iterdir()), [])

    async def test_without_memfd_the_key_file_is_private_and_removed(self) -> None:
        with mock.patch.object(os, "memfd_create", None, create=True):
            loads = await self.diagnose_twice()
        self.assertEqual(len(loads), 1)
        key, data, mode, folder_mode = loads[0]
        self.assertEqual(Path(key).parent.parent, self.temp)
        self.assertEqual(data, self.certs.read("client.key"))
        self.assertEqual(mode & 0o777, 0o600)
        self.assertEqual(folder_mode & 0o777, 0o700)
        self.assertEqual(list(self.temp.iterdir()), [])


if __name__ == "__main__":
    unittest.main()
