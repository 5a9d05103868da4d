"""Where notifications may go (contract section 6), checked at subscription creation and every send.

- Never to one of Safewatch's own endpoints (the broker, InfluxDB, the state database, the API),
  whatever the allow list says: a webhook is a POST of the caller's choosing, and InfluxDB's
  ``/query?q=DROP DATABASE ...`` would obey it.
- Never to loopback, link-local (cloud metadata lives at 169.254.169.254), unspecified or
  multicast addresses unless ``SAFEWATCH_WEBHOOK_ALLOW`` names the host or a range holding the
  address; ``SAFEWATCH_WEBHOOK_DENY`` refuses more, and beats the allow list.
- Checked on the addresses a name resolves to *now*; the webhook channel then connects to the
  address that was checked (``Resolved.url``), so a name that re-resolves between the check and
  the connection (DNS rebinding) cannot slip through.
- MQTT subscriptions: a department publishes only under ``{district}/alerts/{department}/``, the
  admin only under ``{district}/alerts/``.

``resolver`` is injectable so tests can make a name resolve differently at creation and at send.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from domain.settings import Settings, mqtt_parts

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]  # (host, port) → IP addresses as text
DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mqtt": 1883, "mqtts": 8883}


class TargetRefused(ValueError):
    """A notification target the policy refuses; ``str()`` names the reason (the API's 422 detail)."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (socket.gaierror when it does not)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _address(text: str) -> Address:
    """An address as the checks compare it: no IPv6 scope, IPv4-mapped IPv6 as the IPv4 it maps."""
    addr = ipaddress.ip_address(text.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    return addr


def _literal(host: str) -> Address | None:
    try:
        return _address(host.strip("[]"))
    except ValueError:
        return None


def _special(addr: Address) -> str | None:
    """Why an address is refused unless allowed: loopback, link-local, unspecified or multicast."""
    for name in ("loopback", "link_local", "unspecified", "multicast"):
        if getattr(addr, f"is_{name}"):
            return name.replace("_", "-")
    return None


@dataclass(frozen=True, slots=True)
class HostList:
    """``SAFEWATCH_WEBHOOK_ALLOW``/``_DENY``: host names and CIDR ranges (a bare address is a /32)."""

    names: frozenset[str]
    networks: tuple[Network, ...]

    @classmethod
    def parse(cls, text: str, setting: str) -> HostList:
        names: set[str] = set()
        networks: list[Network] = []
        for raw in text.split(","):
            entry = raw.strip().strip("[]")
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            if "/" in entry or not all(part.isalnum() or part in "-_." for part in entry):
                raise ValueError(f"{setting} entry {raw.strip()!r}: expected a host name or a CIDR range")
            names.add(entry.lower().rstrip("."))
        return cls(frozenset(names), tuple(networks))

    def names_host(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.names

    def holds(self, addr: Address) -> bool:
        return any(addr.version == net.version and addr in net for net in self.networks)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One of Safewatch's own services, never a notification target."""

    name: str  # "the MQTT broker", "InfluxDB", ...
    host: str
    port: int


def own_endpoints(settings: Settings) -> list[Endpoint]:
    """The broker, InfluxDB, the state database (when it is a server) and the API, from Settings."""
    host, port, _tls, _user, _password = mqtt_parts(settings.mqtt_url)
    out = [Endpoint("the MQTT broker", host, port)]
    influx = urlsplit(settings.influx_url)
    out.append(Endpoint("InfluxDB", influx.hostname or "", influx.port or DEFAULT_PORTS[influx.scheme]))
    state = urlsplit(settings.state_url)
    if state.hostname:  # postgresql://...; sqlite has no host
        scheme = state.scheme.split("+", 1)[0]
        out.append(Endpoint("the state database", state.hostname, state.port or DEFAULT_PORTS.get(scheme, 5432)))
    out.append(Endpoint("Safewatch's own API", settings.api_host, settings.api_port))
    return out


@dataclass(frozen=True, slots=True)
class Resolved:
    """A checked webhook URL: ``url`` points at the checked address, ``host`` is for Host/SNI."""

    url: str
    host: str
    address: str


class TargetPolicy:
    def __init__(self, district: str = "", *, allow: str = "", deny: str = "",
                 own: Iterable[Endpoint] = (), resolver: Resolver | None = None) -> None:
        self.district = district
        self.allow = HostList.parse(allow, "SAFEWATCH_WEBHOOK_ALLOW")
        self.deny = HostList.parse(deny, "SAFEWATCH_WEBHOOK_DENY")
        self.own = tuple(own)
        self.resolver: Resolver = resolver or system_resolver

    @classmethod
    def from_settings(cls, settings: Settings, district: str, resolver: Resolver | None = None) -> TargetPolicy:
        """Raises ValueError naming SAFEWATCH_WEBHOOK_ALLOW/_DENY for an entry it cannot read."""
        return cls(district, allow=settings.webhook_allow, deny=settings.webhook_deny,
                   own=own_endpoints(settings), resolver=resolver)

    # -- webhooks --------------------------------------------------------------------------------

    def resolve(self, host: str, port: int) -> list[Address]:
        literal = _literal(host)
        if literal is not None:
            return [literal]
        return [_address(a) for a in self.resolver(host, port)]

    def check_url(self, url: str) -> Resolved:
        """Checks a webhook URL now; raises TargetRefused naming why, or OSError when its host does
        not resolve (worth retrying at send; refused at creation)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise TargetRefused(f"url={url!r}: a webhook needs an http:// or https:// URL")
        host = parts.hostname
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError as err:
            raise TargetRefused(f"url={url!r}: {err}") from None
        addresses = self.resolve(host, port)
        if not addresses:
            raise OSError(f"{host} resolves to no address")
        for addr in addresses:
            self._check_address(url, host, addr, port)
        first = addresses[0]
        netloc = f"[{first}]" if first.version == 6 else str(first)
        if parts.port is not None:
            netloc += f":{parts.port}"
        return Resolved(parts._replace(netloc=netloc).geturl(), host, str(first))

    def _check_address(self, url: str, host: str, addr: Address, port: int) -> None:
        shown = host if str(addr) == host.strip("[]") else f"{host} ({addr})"
        if self.deny.names_host(host) or self.deny.holds(addr):
            raise TargetRefused(f"url={url!r}: {shown} is refused by SAFEWATCH_WEBHOOK_DENY")
        for ep in self.own:
            if ep.port == port and self._is_endpoint(addr, ep):
                raise TargetRefused(f"url={url!r}: {shown}:{port} is {ep.name} ({ep.host}:{ep.port}); "
                                    "notifications never go to Safewatch's own services")
        kind = _special(addr)
        if kind is not None and not (self.allow.names_host(host) or self.allow.holds(addr)):
            raise TargetRefused(f"url={url!r}: {shown} is a {kind} address; set SAFEWATCH_WEBHOOK_ALLOW "
                                "to allow it")

    def _is_endpoint(self, addr: Address, ep: Endpoint) -> bool:
        try:
            mine = self.resolve(ep.host, ep.port)
        except OSError:
            return False  # an endpoint we cannot resolve cannot be reached by that name either
        if any(m.is_unspecified for m in mine):  # bound to every interface: any local address reaches it
            return addr.is_loopback or addr.is_unspecified or addr in _local_addresses()
        return addr in mine

    # -- MQTT --------------------------------------------------------------------------------

    def topic_prefix(self, department: str | None, admin: bool) -> str:
        return f"{self.district}/alerts/" if admin or department is None else \
            f"{self.district}/alerts/{department}/"

    def check_topic(self, topic: str, department: str | None, admin: bool) -> None:
        if not topic or "+" in topic or "#" in topic or "\x00" in topic or len(topic.encode()) > 65535:
            raise TargetRefused(f"url={topic!r}: an mqtt subscription needs a topic without wildcards")
        prefix = self.topic_prefix(department, admin)
        if not topic.startswith(prefix) or len(topic) == len(prefix):
            who = "the admin's" if admin or department is None else f"department {department!r}'s"
            raise TargetRefused(f"url={topic!r}: {who} mqtt subscriptions publish only under {prefix!r}")

    def check_subscription(self, channel: str, url: str, department: str | None, admin: bool) -> None:
        """At creation: raises TargetRefused (→ 422) naming the reason. A host that does not
        resolve yet is accepted (a receiver set up later): every send checks it again."""
        if channel == "mqtt":
            self.check_topic(url, department, admin)
            return
        if channel != "webhook":
            return  # not a channel at all: the store refuses it, naming the option
        with contextlib.suppress(OSError):
            self.check_url(url)


def _local_addresses() -> frozenset[Address]:
    """This machine's own addresses, best effort (for an API bound to 0.0.0.0)."""
    out: set[Address] = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None):
            out.add(_address(str(info[4][0])))
    except OSError:
        pass
    return frozenset(out)
