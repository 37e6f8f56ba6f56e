"""A client certificate refused by a server that requires one (mutual TLS).

gRPC reports it as UNAVAILABLE, which would be retried for nothing: grpcio
1.51 (Debian 12) says only "Endpoint read failed" (no certificate: the
server's TLS alert 116 is not passed on) or "Socket closed" (a certificate
the server does not trust: over TLS 1.3 the server closes the connection
after the handshake, without an alert); later grpcio versions may quote the
alert. So: an alert named in the message is read from it; otherwise a
connection that failed in the handshake phase is diagnosed with one TLS
connection of our own (Python's ssl, the same certificates), which sees the
alert, or the silent close, itself. Either way the caller gets an
UnauthenticatedError, raised once, never retried.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import tempfile

import grpc

from .errors import UnauthenticatedError
from .options import TlsOptions

__all__ = ["CERTIFICATE_REQUIRED", "SILENT_REFUSAL", "CertificateRefusals"]

#: The message when no certificate was sent to a server that requires one.
CERTIFICATE_REQUIRED = (
    "the server requires a client certificate (mutual TLS) and none was sent "
    "(TLS alert 116, certificate required): give TlsOptions certificate_chain and private_key"
)
_REFUSED = "the server requires a client certificate (mutual TLS) and refused this one: "
#: Why a TLS 1.3 server closed the connection right after the handshake.
SILENT_REFUSAL = (
    "the server closed the connection right after the TLS handshake without a word, "
    "as it does with a certificate it does not trust (another CA, expired, revoked)"
)

#: Alerts about the client certificate: (text in gRPC's message, OpenSSL reason, what it means).
_ALERTS = (
    ("bad certificate", "SSLV3_ALERT_BAD_CERTIFICATE", "bad certificate (TLS alert 42)"),
    ("unsupported certificate", "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE",
     "unsupported certificate (TLS alert 43)"),
    ("certificate revoked", "SSLV3_ALERT_CERTIFICATE_REVOKED", "certificate revoked (TLS alert 44)"),
    ("certificate expired", "SSLV3_ALERT_CERTIFICATE_EXPIRED", "certificate expired (TLS alert 45)"),
    ("certificate unknown", "SSLV3_ALERT_CERTIFICATE_UNKNOWN", "certificate unknown (TLS alert 46)"),
    ("unknown ca", "TLSV1_ALERT_UNKNOWN_CA",
     "signed by a CA the server does not trust (TLS alert 48, unknown ca)"),
)
_REQUIRED = ("certificate required", "TLSV13_ALERT_CERTIFICATE_REQUIRED")

#: gRPC's words for a connection that failed before any call reached the server.
_NOT_CONNECTED = "failed to connect to all addresses"
#: The HTTP/2 client preface and an empty SETTINGS frame: a server that
#: accepted the connection answers with its SETTINGS.
_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_PROBE_SECONDS = 5.0


class CertificateRefusals:
    """The refused-certificate diagnosis of one connection: its ssl context
    (roots, client certificate) is built once, on the first diagnosis, and
    reused by every later one, so the private key is loaded once per
    connection and never left on disk (see ``_load_certificate``).
    """

    def __init__(self, target: str, tls: TlsOptions | None) -> None:
        self._target = target
        self._tls = tls
        self._context: ssl.SSLContext | None = None

    async def refusal(self, error: grpc.aio.AioRpcError) -> UnauthenticatedError | None:
        """The UnauthenticatedError for a refused client certificate, or None
        when ``error`` is something else (it is then handled as before)."""
        tls = self._tls
        if tls is None or error.code() != grpc.StatusCode.UNAVAILABLE:
            return None
        details = error.details() or ""
        message = _message_for(details.lower())
        if message is None and _NOT_CONNECTED in details:
            address = _host_port(self._target)
            if address is not None:
                message = await _probe(*address, tls, self._diagnostic_context(tls))
        if message is None:
            return None
        return UnauthenticatedError(grpc.StatusCode.UNAUTHENTICATED, message)

    def _diagnostic_context(self, tls: TlsOptions) -> ssl.SSLContext:
        """The connection's diagnostic ssl context, built on first use."""
        if self._context is None:
            self._context = _context(tls)
        return self._context


def _message_for(text: str) -> str | None:
    """The message for an alert named in ``text`` (gRPC's words or OpenSSL's reason)."""
    if any(word.lower() in text for word in _REQUIRED):
        return CERTIFICATE_REQUIRED
    for words, reason, meaning in _ALERTS:
        if words in text or reason.lower() in text:
            return _REFUSED + meaning
    return None


def _host_port(target: str) -> tuple[str, int] | None:
    """Host and port of a "host:port" / "[v6]:port" / "dns:///host:port" target."""
    address = target.removeprefix("dns:///")
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


async def _probe(host: str, port: int, tls: TlsOptions, context: ssl.SSLContext) -> str | None:
    """One TLS connection with ``context`` (made from ``tls``): the refusal it
    meets, or None when the server accepts it (or cannot be reached, or its
    certificate fails)."""
    server_name = tls.server_name or host
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=server_name),
            _PROBE_SECONDS,
        )
    except ssl.SSLCertVerificationError:
        return None
    except ssl.SSLError as error:
        return _message_for(str(error.reason or "").lower())
    except (OSError, asyncio.TimeoutError):
        return None
    try:
        writer.write(_PREFACE)
        answer = await asyncio.wait_for(reader.read(1), _PROBE_SECONDS)
    except ssl.SSLError as error:
        return _message_for(str(error.reason or "").lower())
    except ConnectionResetError:
        answer = b""
    except (OSError, asyncio.TimeoutError):
        return None
    finally:
        writer.close()
        with contextlib.suppress(OSError, ssl.SSLError, asyncio.TimeoutError):
            await asyncio.wait_for(writer.wait_closed(), _PROBE_SECONDS)
    if answer or tls.certificate_chain is None:
        return None
    return _REFUSED + SILENT_REFUSAL


def _context(tls: TlsOptions) -> ssl.SSLContext:
    """An ssl context with the channel's roots and client certificate, offering h2."""
    roots = None if tls.root_certificates is None else tls.root_certificates.decode()
    context = ssl.create_default_context(cadata=roots)
    context.set_alpn_protocols(["h2"])
    if tls.certificate_chain is not None and tls.private_key is not None:
        _load_certificate(context, tls.certificate_chain, tls.private_key)
    return context


def _load_certificate(context: ssl.SSLContext, chain: bytes, key: bytes) -> None:
    """Loads the client certificate into ``context``. Python's ssl reads a
    key only from a file: on Linux an anonymous in-memory one (memfd, on no
    file system, gone when closed); elsewhere files made 0600 in a private
    (0700) temporary directory, removed as soon as they are loaded."""
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is not None and os.path.isdir("/proc/self/fd"):
        fds: list[int] = []
        try:
            for data in (chain, key):
                fds.append(memfd_create("runstore-tls", os.MFD_CLOEXEC))
                with open(fds[-1], "wb", closefd=False) as file:
                    file.write(data)
            context.load_cert_chain(*(f"/proc/self/fd/{fd}" for fd in fds))
        finally:
            for fd in fds:
                os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="runstore-tls-") as folder:
        cert, key_path = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        for path, data in ((cert, chain), (key_path, key)):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as file:
                file.write(data)
        context.load_cert_chain(cert, key_path)
