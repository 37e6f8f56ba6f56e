"""Several replicas as one gRPC target, the grpcio way.

grpcio reaches several servers through one channel when the target names
them all ("ipv4:127.0.0.1:50051,127.0.0.1:50052", or "ipv6:[::1]:1,[::1]:2")
and the channel's load-balancing policy is round_robin: each call goes to
the next connected address, a server that goes away is dropped from the
rotation until it is back, and a call that never left this process is
moved to another address by grpcio itself. GrpcRunStore's own retries
(UNAVAILABLE, idempotent RPCs only) then land on another replica too.

The multi-address schemes take IP addresses only (grpcio resolves no names
in them); a DNS name that resolves to every replica is one target instead
("dns:///runstore:50051", with ``channel_options=[ROUND_ROBIN]``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .options import TlsOptions, split_target

__all__ = ["AUTHORITY", "ROUND_ROBIN", "ChannelTarget", "channel_target"]

#: The channel argument that spreads calls over every address of the target.
ROUND_ROBIN = ("grpc.lb_policy_name", "round_robin")

#: The channel argument naming the :authority every call sends.
AUTHORITY = "grpc.default_authority"

#: Channel arguments by which a caller chose a load-balancing policy already.
_POLICY_ARGUMENTS = ("grpc.lb_policy_name", "grpc.service_config")


@dataclass(frozen=True)
class ChannelTarget:
    """What GrpcRunStore opens its channel with."""

    #: The gRPC target string.
    target: str
    tls: TlsOptions | None
    #: Channel arguments the target needs (round_robin for several addresses).
    options: tuple[tuple[str, Any], ...]
    #: One "host:port" of the target, where a refused client certificate is diagnosed.
    first_address: str


def channel_target(
    target: str | Sequence[str],
    tls: TlsOptions | None,
    channel_options: Sequence[tuple[str, Any]] = (),
) -> ChannelTarget:
    """The channel for ``target``: one gRPC target string (as split_target
    takes it; a multi-address "ipv4:"/"ipv6:" one gets round_robin), or a
    list of replicas, each "host:port" with an IP address ("[v6]:port"),
    optionally all "http://…" or all "https://…". Refused, naming the entry
    (``target[1]``): an empty list, a non-string, a host name, a bad port,
    a repeat, IPv4 and IPv6 together, mixed schemes. A load-balancing
    policy the caller set in ``channel_options`` is kept; several addresses
    send the first one as the calls' :authority unless the caller set one."""
    if isinstance(target, str):
        built, tls = split_target(target, tls)
        several = built.startswith(("ipv4:", "ipv6:")) and "," in built
        first = built.split(":", 1)[1].split(",")[0] if several else built
    elif isinstance(target, Sequence) and not isinstance(target, (bytes, bytearray)):
        built, tls, first = _multi_address(target, tls)
        several = True
    else:
        raise TypeError(
            f"target must be a string or a list of 'host:port' strings, got {type(target).__name__}"
        )
    chosen = any(name in _POLICY_ARGUMENTS for name, _ in channel_options)
    options: tuple[tuple[str, Any], ...] = (ROUND_ROBIN,) if several and not chosen else ()
    if several and not any(name == AUTHORITY for name, _ in channel_options):
        # grpcio would send the whole multi-address target as :authority,
        # which is no host (a connect-node server fails streaming calls on it).
        options += ((AUTHORITY, first),)
    return ChannelTarget(built, tls, options, first)


def _multi_address(
    targets: Sequence[Any], tls: TlsOptions | None
) -> tuple[str, TlsOptions | None, str]:
    """The "ipv4:…"/"ipv6:…" target of a list of replicas, its TLS, its first address."""
    if len(targets) == 0:
        raise ValueError("target is an empty list: give at least one 'host:port'")
    schemes: set[str] = set()
    addresses: list[str] = []
    families: set[int] = set()
    for i, entry in enumerate(targets):
        if not isinstance(entry, str):
            raise TypeError(f"target[{i}] must be a 'host:port' string, got {type(entry).__name__}")
        scheme, _, address = entry.rpartition("://")
        schemes.add(scheme)
        if len(schemes) > 1:
            raise ValueError(
                f"target[{i}] is {entry!r} but target[0] is {targets[0]!r}: "
                "every replica takes the same form (they share the TLS settings)"
            )
        if scheme not in ("", "http", "https"):
            raise ValueError(
                f"target[{i}] must be 'host:port' or http(s)://host:port, got {entry!r}"
            )
        family, normal = _address(f"target[{i}]", address.rstrip("/"))
        if normal in addresses:
            raise ValueError(f"target[{i}] repeats target[{addresses.index(normal)}] ({entry!r})")
        families.add(family)
        if len(families) > 1:
            raise ValueError(
                f"target[{i}] ({entry!r}): IPv4 and IPv6 addresses cannot be mixed in one "
                "grpcio multi-address target"
            )
        addresses.append(normal)
    scheme = schemes.pop()
    if scheme == "http" and tls is not None:
        raise ValueError(f"tls options need https:// targets, got {targets[0]!r}")
    if scheme == "https":
        tls = tls or TlsOptions()
    prefix = "ipv4:" if families == {4} else "ipv6:"
    return prefix + ",".join(addresses), tls, addresses[0]


def _address(field: str, address: str) -> tuple[int, str]:
    """The IP version and normal form ("1.2.3.4:5", "[::1]:5") of ``address``."""
    host, _, port = address.rpartition(":")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"{field}: {address!r} needs a port from 1 to 65535, as 'host:port'")
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        ip = ipaddress.ip_address(host[1:-1] if bracketed else host)
    except ValueError:
        raise ValueError(
            f"{field}: {host!r} is not an IP address; a list of replicas takes addresses "
            "(grpcio resolves no names in a multi-address target): give a DNS name that "
            "resolves to every replica as one target, 'dns:///name:port', instead"
        ) from None
    if ip.version == 6 and not bracketed:
        raise ValueError(f"{field}: an IPv6 address goes in brackets, '[{host}]:{port}'")
    shown = f"[{ip.compressed}]" if ip.version == 6 else ip.compressed
    return ip.version, f"{shown}:{int(port)}"
