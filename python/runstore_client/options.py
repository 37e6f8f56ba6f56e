"""How GrpcRunStore reaches the server: target, TLS, and the channel built from them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

__all__ = [
    "DEFAULT_CALL_QUEUE_TIMEOUT",
    "DEFAULT_MAX_QUEUED_CALLS",
    "DEFAULT_KEEPALIVE_SECONDS",
    "DEFAULT_MAX_CONCURRENT_CALLS",
    "DEFAULT_MAX_REQUEST_BYTES",
    "TlsOptions",
    "bearer_metadata",
    "check_call_queue_timeout",
    "check_max_queued_calls",
    "check_channel_limits",
    "check_max_concurrent_calls",
    "check_timeout",
    "open_channel",
    "split_target",
]

#: The server's default request limit, which the client keeps to unless told
#: otherwise: a larger request fails locally with RESOURCE_EXHAUSTED.
DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024

#: Bounds of gRPC's reconnect backoff (its defaults are 1 s growing to 120 s):
#: after a server restart or a network blip the store is back within seconds,
#: not minutes, while calls in between fail fast with UNAVAILABLE.
RECONNECT_BACKOFF_MS = (250, 5000)

#: HTTP/2 PING interval, so a connection a NAT or load balancer dropped
#: silently is noticed in seconds rather than at the next call's timeout.
DEFAULT_KEEPALIVE_SECONDS = 30.0

#: Calls on the wire at once per store: the server's default
#: MAX_CONCURRENT_STREAMS, as the TypeScript SDK's maxConcurrentCalls.
DEFAULT_MAX_CONCURRENT_CALLS = 100

#: Calls that may wait for a place on the wire per store (call_gate.py), as
#: the TypeScript SDK's maxQueuedCalls: a backlog in the client only grows
#: until deadlines expire; bounded by count, a burst waits its turn however
#: slow the server is.
DEFAULT_MAX_QUEUED_CALLS = 1000

#: Seconds a call may wait for a place on the wire; None: its timeout alone
#: (the TypeScript SDK's callQueueTimeoutMs, default 0).
DEFAULT_CALL_QUEUE_TIMEOUT: float | None = None


@dataclass(frozen=True)
class TlsOptions:
    """TLS settings (PEM bytes); mutual TLS when a client certificate is given.

    Without ``root_certificates`` gRPC's default roots are trusted.
    ``server_name`` overrides the name the server certificate is checked
    against, for a target whose host differs from it.
    """

    root_certificates: bytes | None = None
    certificate_chain: bytes | None = None
    private_key: bytes | None = None
    server_name: str | None = None

    def __post_init__(self) -> None:
        for name in ("root_certificates", "certificate_chain", "private_key"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bytes):
                raise TypeError(f"TlsOptions.{name} must be PEM bytes, got {type(value).__name__}")
        if (self.certificate_chain is None) != (self.private_key is None):
            raise ValueError("TlsOptions: certificate_chain and private_key go together (mTLS)")

    @classmethod
    def from_files(
        cls,
        *,
        ca: str | Path | None = None,
        cert: str | Path | None = None,
        key: str | Path | None = None,
        server_name: str | None = None,
    ) -> TlsOptions:
        """TlsOptions read from PEM files (the paths the server's TLS_* settings take)."""

        def read(path: str | Path | None) -> bytes | None:
            return None if path is None else Path(path).read_bytes()

        return cls(read(ca), read(cert), read(key), server_name)

    def credentials(self) -> grpc.ChannelCredentials:
        """The channel credentials gRPC takes."""
        return grpc.ssl_channel_credentials(
            root_certificates=self.root_certificates,
            private_key=self.private_key,
            certificate_chain=self.certificate_chain,
        )


def split_target(target: str, tls: TlsOptions | None) -> tuple[str, TlsOptions | None]:
    """The gRPC target and TLS settings for ``target``.

    ``target`` is a gRPC target ("127.0.0.1:50051", "dns:///runstore:50051")
    or a URL as the server logs it: "http://host:port" (plaintext) or
    "https://host:port" (TLS, default roots unless ``tls`` says otherwise).
    TLS settings with an http:// URL are refused: sending a token in the
    clear because of a typo in the scheme is worse than failing at start-up.
    """
    if not isinstance(target, str) or target.strip() == "":
        raise ValueError("GrpcRunStore needs a target such as '127.0.0.1:50051'")
    if target.startswith("http://"):
        if tls is not None:
            raise ValueError(f"tls options need an https:// target, got {target}")
        return target.removeprefix("http://").rstrip("/"), None
    if target.startswith("https://"):
        return target.removeprefix("https://").rstrip("/"), tls or TlsOptions()
    return target, tls


def bearer_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The call metadata carrying ``token`` (none without one).

    A token must be printable ASCII without whitespace, as HTTP/2 header
    values and the server's AUTH_TOKENS are; refused here rather than on
    every call.
    """
    if token is None:
        return ()
    if not isinstance(token, str) or token == "" or not token.isascii() or not token.isprintable() \
            or any(c.isspace() for c in token):
        raise ValueError("token must be a non-empty ASCII string without whitespace")
    return (("authorization", f"Bearer {token}"),)


def check_timeout(timeout: float | None) -> float | None:
    """A call timeout in seconds: > 0, or None for no deadline."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
        raise ValueError(f"timeout must be a number of seconds > 0 or None, got {timeout!r}")
    return float(timeout)


def check_channel_limits(max_request_bytes: int, keepalive_seconds: float) -> None:
    """Refuses a request limit below 1 byte or a negative keepalive interval."""
    if isinstance(max_request_bytes, bool) or not isinstance(max_request_bytes, int) \
            or max_request_bytes < 1:
        raise ValueError(f"max_request_bytes must be an integer >= 1, got {max_request_bytes!r}")
    if isinstance(keepalive_seconds, bool) or not isinstance(keepalive_seconds, (int, float)) \
            or not keepalive_seconds >= 0:
        raise ValueError(f"keepalive_seconds must be a number >= 0, got {keepalive_seconds!r}")


def check_max_concurrent_calls(value: int) -> int:
    """Refuses a limit on calls on the wire below 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"max_concurrent_calls must be an integer >= 1, got {value!r}")
    return value


def check_max_queued_calls(value: int | None) -> int | None:
    """How many calls may wait for a place: an integer >= 0, or None for any number."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"max_queued_calls must be an integer >= 0 or None, got {value!r}")
    return value


def check_call_queue_timeout(value: float | None) -> float | None:
    """A bound in seconds on a call's wait for a place: > 0 and finite, or
    None for none (the wait is then bounded by the call's timeout alone)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not 0 < value < float("inf"):
        raise ValueError(
            f"call_queue_timeout must be a finite number of seconds > 0 or None, got {value!r}"
        )
    return float(value)


def open_channel(
    target: str,
    tls: TlsOptions | None,
    *,
    max_request_bytes: int,
    keepalive_seconds: float,
    extra_options: Sequence[tuple[str, Any]] = (),
) -> grpc.aio.Channel:
    """A grpc.aio channel; call it inside the event loop that will use it."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", max_request_bytes),
        # Lists have no size bound (list_pending has no limit): trust the server.
        ("grpc.max_receive_message_length", -1),
        ("grpc.primary_user_agent", "runstore-client-python"),
        ("grpc.initial_reconnect_backoff_ms", RECONNECT_BACKOFF_MS[0]),
        ("grpc.min_reconnect_backoff_ms", RECONNECT_BACKOFF_MS[0]),
        ("grpc.max_reconnect_backoff_ms", RECONNECT_BACKOFF_MS[1]),
    ]
    if keepalive_seconds > 0:
        options.append(("grpc.keepalive_time_ms", int(keepalive_seconds * 1000)))
    if tls is not None and tls.server_name is not None:
        options.append(("grpc.ssl_target_name_override", tls.server_name))
    options.extend(extra_options)
    if tls is None:
        return grpc.aio.insecure_channel(target, options=options)
    return grpc.aio.secure_channel(target, tls.credentials(), options=options)
