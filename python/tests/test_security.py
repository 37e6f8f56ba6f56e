"""Options: bearer token, TLS roots, server name, client certificates,
against a server with AUTH_TOKENS and TLS, and one with mutual TLS."""

from __future__ import annotations

from tests.support.requirements import require_grpc

require_grpc()

import asyncio  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import unittest  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, ClassVar  # noqa: E402
from unittest import mock  # noqa: E402

import grpc  # noqa: E402

from runstore_client import (  # noqa: E402
    GrpcRunStore,
    RunStoreError,
    TlsOptions,
    UnauthenticatedError,
    UnavailableError,
)
from runstore_client import connection  # noqa: E402
from runstore_client.tls_refusal import CERTIFICATE_REQUIRED, SILENT_REFUSAL  # noqa: E402
from tests.support.certs import SERVER_NAME, CertFiles, make_certs  # noqa: E402
from tests.support.server import ServerProcess  # noqa: E402
from tests.support.until import until  # noqa: E402

TOKEN = "python-client-token-0123456789"
PYTHON_DIR = Path(__file__).resolve().parents[1]


class _TlsServerCase(unittest.IsolatedAsyncioTestCase):
    """A server with AUTH_TOKENS and TLS; ``mutual`` adds TLS_CLIENT_CA_FILE."""

    mutual: ClassVar[bool] = False
    certs: ClassVar[CertFiles]
    server: ClassVar[ServerProcess]

    @classmethod
    def setUpClass(cls) -> None:
        cls.certs = make_certs()
        cls.addClassCleanup(cls.certs.remove)
        env = {
            "AUTH_TOKENS": f"another-token-abcdefgh,{TOKEN}",
            "TLS_CERT_FILE": str(cls.certs.path("server.crt")),
            "TLS_KEY_FILE": str(cls.certs.path("server.key")),
        }
        if cls.mutual:
            env["TLS_CLIENT_CA_FILE"] = str(cls.certs.path("ca.crt"))
        cls.server = ServerProcess.start(env)
        cls.addClassCleanup(cls.server.stop)

    def tls(self, **overrides: Any) -> TlsOptions:
        """Everything the server asks for: its CA, its name, our client certificate when mutual."""
        fields: dict[str, Any] = {
            "root_certificates": self.certs.read("ca.crt"),
            "server_name": SERVER_NAME,
        }
        if self.mutual:
            fields["certificate_chain"] = self.certs.read("client.crt")
            fields["private_key"] = self.certs.read("client.key")
        fields.update(overrides)
        return TlsOptions(**fields)

    async def refused(self, error: type[RunStoreError], **options: Any) -> RunStoreError:
        """The error a get fails with on a store built from ``options`` (no retries)."""
        async with GrpcRunStore(self.server.target, retry=False, timeout=10, **options) as store:
            with self.assertRaises(error) as caught:
                await store.get("r1")
        return caught.exception


class TokenAndTlsTest(_TlsServerCase):
    async def test_token_over_tls_is_accepted(self) -> None:
        self.assertEqual(self.server.scheme, "https")
        async with GrpcRunStore(self.server.target, token=TOKEN, tls=self.tls()) as store:
            await store.put("r1", thread_id="t1")
            run = await store.get("r1")
            self.assertEqual(run and run["thread_id"], "t1")
            self.assertIs(await store.update_status("r1", "running"), True)

    async def test_missing_or_wrong_token_is_unauthenticated(self) -> None:
        for token in (None, "wrong-token-0123456789", TOKEN + "x"):
            with self.subTest(token=token):
                error = await self.refused(UnauthenticatedError, token=token, tls=self.tls())
                self.assertEqual(error.code, grpc.StatusCode.UNAUTHENTICATED)
                self.assertFalse(error.retryable)

    async def test_server_certificate_is_verified(self) -> None:
        for name, tls in (
            ("default roots do not trust the test CA", self.tls(root_certificates=None)),
            ("the certificate does not name 127.0.0.1", self.tls(server_name=None)),
        ):
            with self.subTest(name):
                error = await self.refused(UnavailableError, token=TOKEN, tls=tls)
                self.assertEqual(error.code, grpc.StatusCode.UNAVAILABLE)

    async def test_plaintext_client_cannot_talk_to_tls_server(self) -> None:
        await self.refused(UnavailableError, token=TOKEN)

    async def test_readme_example_runs(self) -> None:
        """The Python example of the repository README, as written, against this server."""
        readme = (PYTHON_DIR.parent / "README.md").read_text()
        section = readme.split("\n## Python\n", 1)[1]
        example = section.split("```python\n", 1)[1].split("```", 1)[0]
        env = {
            **os.environ,
            "PYTHONPATH": str(PYTHON_DIR),
            "RUNSTORE_CA": str(self.certs.path("ca.crt")),
            "RUNSTORE_TARGET": f"localhost:{self.server.port}",
            "RUNSTORE_TOKEN": TOKEN,
        }
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-c", example],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        inflight, completed = result.stdout.splitlines()
        self.assertIn("'run_id': 'run-1'", inflight)
        self.assertIn("'status': 'running'", inflight)
        self.assertEqual(completed, "True")


class MutualTlsTest(_TlsServerCase):
    mutual = True

    async def test_client_certificate_and_token_are_accepted(self) -> None:
        async with GrpcRunStore(self.server.target, token=TOKEN, tls=self.tls()) as store:
            await store.put("r1", thread_id="t1")
            self.assertEqual((await store.list_by_thread("t1"))[0]["run_id"], "r1")

    async def test_tls_from_files_and_https_target(self) -> None:
        tls = TlsOptions.from_files(
            ca=self.certs.path("ca.crt"),
            cert=self.certs.path("client.crt"),
            key=self.certs.path("client.key"),
            server_name=SERVER_NAME,
        )
        self.assertEqual(tls, self.tls())
        async with GrpcRunStore(f"https://127.0.0.1:{self.server.port}", token=TOKEN, tls=tls) as store:
            self.assertEqual(await store.list_by_thread("nobody"), [])

    async def test_refused_client_certificate_is_unauthenticated_once(self) -> None:
        """No certificate, or one of an untrusted CA: UnauthenticatedError
        with the reason, one attempt under the default 4-attempt policy,
        and the server's warn lines: the attempt's handshake and the
        client's one diagnostic handshake (tls_refusal.py)."""
        stranger = {
            "certificate_chain": self.certs.read("stranger.crt"),
            "private_key": self.certs.read("stranger.key"),
        }
        cases = (
            ("no client certificate", self.tls(certificate_chain=None, private_key=None),
             CERTIFICATE_REQUIRED, "no client certificate"),
            ("certificate of an untrusted CA", self.tls(**stranger),
             "the server requires a client certificate (mutual TLS) and refused this one: "
             + SILENT_REFUSAL,
             "client certificate not trusted (UNABLE_TO_VERIFY_LEAF_SIGNATURE)"),
        )
        for name, tls, message, reason in cases:
            with self.subTest(name):
                attempts = 0
                real = connection.call_with_retry

                async def counting(attempt: Any, **options: Any) -> Any:
                    async def counted(timeout: float | None) -> Any:
                        nonlocal attempts
                        attempts += 1
                        return await attempt(timeout)

                    return await real(counted, **options)

                before = len(self.refusal_lines())
                with mock.patch.object(connection, "call_with_retry", counting):
                    async with GrpcRunStore(self.server.target, token=TOKEN, tls=tls, timeout=10) as store:
                        with self.assertRaises(UnauthenticatedError) as caught:
                            await store.get("r1")
                error = caught.exception
                self.assertEqual(error.code, grpc.StatusCode.UNAUTHENTICATED)
                self.assertEqual(error.details, message)
                self.assertFalse(error.retryable)
                self.assertEqual(attempts, 1)
                lines = await self.wait_for_refusals(before + 2)
                self.assertEqual(len(lines), before + 2)
                for line in lines[before:]:
                    self.assertEqual(line["level"], 40)
                    self.assertEqual(line["reason"], reason)
                    self.assertRegex(line["peer"], r"^127\.0\.0\.1:\d+$")

    def refusal_lines(self) -> list[dict[str, Any]]:
        """The server's warn lines about refused client certificates so far."""
        lines = [json.loads(line) for line in self.server.output().splitlines() if line.startswith("{")]
        return [line for line in lines if line.get("msg") == "TLS client certificate refused"]

    async def wait_for_refusals(self, count: int) -> list[dict[str, Any]]:
        """The refusal lines once there are ``count`` (the server logs as it closes; bounded)."""
        if await until(lambda: len(self.refusal_lines()) >= count, 20.0):
            return self.refusal_lines()
        self.fail(f"the server logged {len(self.refusal_lines())} refusal lines, expected {count}")
