"""Where notifications may go (contract section 6), checked at subscription creation and every send.

- Never to one of Safewatch's own endpoints (the broker, InfluxDB, the state database, the API),
  whatever the allow list says: a webhook is a POST of the caller's choosing, and InfluxDB's
  ``/query?q=DROP DATABASE ...`` would obey it.
  A service on this machine (configured as loopback, ``0.0.0.0`` or one of this machine's
  addresses) counts at *every* address of this machine on its port: InfluxDB 1.x, Mosquitto and
  PostgreSQL are often configured as ``127.0.0.1`` while listening on all interfaces, so the
  machine's LAN address would otherwise reach them (``LocalAddresses``).
- Never to loopback, link-local (cloud metadata lives at 169.254.169.254), unspecified or
  multicast addresses, nor to the cloud metadata services outside link-local (Alibaba's
  100.100.100.200, AWS's fd00:ec2::254, Google's fd20:ce::254), unless ``SAFEWATCH_WEBHOOK_ALLOW``
  names the host or a range holding the address; ``SAFEWATCH_WEBHOOK_DENY`` refuses more, and
  beats the allow list.
- An IPv6 address that carries an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible
  ``::a.b.c.d``, NAT64 ``64:ff9b::/96``, 6to4 ``2002::/16``) is also judged as that IPv4 address:
  a NAT64 gateway or 6to4 relay delivers it there.
- Checked on the addresses a name resolves to *now*; the webhook channel then connects to the
  address that was checked (``Resolved.url``), so a name that re-resolves between the check and
  the connection (DNS rebinding) cannot slip through.
- MQTT subscriptions: a department publishes only under ``{district}/alerts/{department}/``, the
  admin only under ``{district}/alerts/``.

``resolver`` is injectable so tests can make a name resolve differently at creation and at send.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from domain.settings import Settings, mqtt_parts

log = logging.getLogger(__name__)

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Sequence[str]]  # (host, port) → IP addresses as text
DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mqtt": 1883, "mqtts": 8883}
# Instance metadata services outside link-local (which is refused anyway): they hand out cloud
# credentials to whoever asks from the machine, so a webhook must not be the one asking.
METADATA: tuple[Network, ...] = tuple(ipaddress.ip_network(n) for n in (
    "100.100.100.200/32",  # Alibaba Cloud
    "fd00:ec2::254/128",  # AWS, IPv6 (Nitro)
    "fd20:ce::254/128",  # Google Cloud, IPv6
))
NAT64 = ipaddress.ip_network("64:ff9b::/96")
THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")  # "this host on this network": Linux connects 0.0.0.0 to itself


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


def _embedded_ipv4(addr: Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (NAT64, 6to4, IPv4-compatible), or None."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return None
    if addr in NAT64:
        return ipaddress.IPv4Address(int(addr) & 0xFFFF_FFFF)
    if addr.sixtofour is not None:
        return addr.sixtofour
    if int(addr) >> 32 == 0 and int(addr) > 1:  # ::a.b.c.d; :: and ::1 are IPv6's own
        return ipaddress.IPv4Address(int(addr))
    return None


def _views(addr: Address) -> list[Address]:
    """The address, and the IPv4 address it carries: each must pass the checks."""
    embedded = _embedded_ipv4(addr)
    return [addr] if embedded is None else [addr, embedded]


def _special(addr: Address) -> str | None:
    """Why an address is refused unless allowed: cloud metadata, loopback, link-local, unspecified
    or multicast."""
    if any(addr.version == net.version and addr in net for net in METADATA):
        return "cloud metadata"
    for name in ("loopback", "link_local", "unspecified", "multicast"):
        if getattr(addr, f"is_{name}"):
            return name.replace("_", "-")
    if addr.version == 4 and addr in THIS_NETWORK:
        return "unspecified"
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
    out += state_endpoints(settings.state_url)
    out.append(Endpoint("Safewatch's own API", settings.api_host, settings.api_port))
    return out


def state_endpoints(url: str) -> list[Endpoint]:
    """Every server of the state database: the URL's host and each ``host``/``hostaddr`` of a
    multi-host libpq URL (``postgresql://u@/db?host=pg1:5432&host=pg2:5432``, or
    ``?host=pg1,pg2&port=5432,5433``), in which urlsplit finds no host at all. SQLite and
    Unix socket directories are no network target."""
    try:
        u = make_url(url)
    except (ArgumentError, ValueError):
        return []
    if u.drivername.startswith("sqlite"):
        return []
    default = DEFAULT_PORTS.get(u.drivername.split("+", 1)[0], 5432)
    out = [Endpoint("the state database", u.host, u.port or default)] if u.host else []

    def items(key: str) -> list[str]:
        value = u.query.get(key)
        values = (value,) if isinstance(value, str) else tuple(value or ())
        return [x.strip() for v in values for x in v.split(",")]

    ports = [int(p) if p.isdigit() else default for p in items("port")]
    for key in ("host", "hostaddr"):
        for i, item in enumerate(items(key)):
            host, port = _host_port(item)
            if host and not host.startswith("/"):
                # libpq: one port for all hosts, or one per host in the same order.
                implied = ports[i] if i < len(ports) else ports[0] if len(ports) == 1 else default
                out.append(Endpoint("the state database", host, port or implied))
    return out


def _host_port(item: str) -> tuple[str, int | None]:
    """``pg1:5432``, ``[::1]:5432``, ``pg1``, ``::1`` → (host, port or None)."""
    if item.startswith("["):
        host, _, rest = item[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else None
    if item.count(":") == 1:
        host, port = item.split(":")
        return host, int(port) if port.isdigit() else None
    return item, None


@dataclass(frozen=True, slots=True)
class Resolved:
    """A checked webhook URL: ``url`` points at the checked address, ``host`` is for Host/SNI."""

    url: str
    host: str
    address: str


class TargetPolicy:
    def __init__(self, district: str = "", *, allow: str = "", deny: str = "",
                 own: Iterable[Endpoint] = (), resolver: Resolver | None = None,
                 local: LocalAddresses | None = None) -> None:
        self.district = district
        self.allow = HostList.parse(allow, "SAFEWATCH_WEBHOOK_ALLOW")
        self.deny = HostList.parse(deny, "SAFEWATCH_WEBHOOK_DENY")
        self.own = tuple(own)
        self.resolver: Resolver = resolver or system_resolver
        self.local = local or LOCAL

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
            for view in _views(addr):
                self._check_address(url, host, addr, view, port)
        first = addresses[0]
        netloc = f"[{first}]" if first.version == 6 else str(first)
        if parts.port is not None:
            netloc += f":{parts.port}"
        return Resolved(parts._replace(netloc=netloc).geturl(), host, str(first))

    def _check_address(self, url: str, host: str, resolved: Address, addr: Address, port: int) -> None:
        """Checks ``addr``: ``resolved`` (what ``host`` resolved to) or the IPv4 address it carries."""
        shown = host if str(resolved) == host.strip("[]") else f"{host} ({resolved})"
        if addr != resolved:
            shown += f", which carries {addr},"
        if self.deny.names_host(host) or self.deny.holds(addr):
            raise TargetRefused(f"url={url!r}: {shown} is refused by SAFEWATCH_WEBHOOK_DENY")
        for ep in self.own:
            if ep.port == port and self._is_endpoint(addr, ep):
                raise TargetRefused(f"url={url!r}: {shown}:{port} is {ep.name} ({ep.host}:{ep.port}); "
                                    "notifications never go to Safewatch's own services")
        kind = _special(addr)
        if kind is not None and not (self.allow.names_host(host) or self.allow.holds(addr)):
            article = "an" if kind[0] in "aeiou" else "a"
            raise TargetRefused(f"url={url!r}: {shown} is {article} {kind} address; set SAFEWATCH_WEBHOOK_ALLOW "
                                "to allow it")

    def _is_endpoint(self, addr: Address, ep: Endpoint) -> bool:
        try:
            mine = self.resolve(ep.host, ep.port)
        except OSError:
            return False  # an endpoint we cannot resolve cannot be reached by that name either
        if addr in mine:
            return True
        # A service on this machine may listen on more addresses than it was configured with
        # (InfluxDB 1.x binds every interface by default, whatever SAFEWATCH_INFLUX_URL says):
        # then every address of this machine on that port may reach it.
        return any(self.local.holds(m) for m in mine) and self.local.holds(addr)

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


class LocalAddresses:
    """Whether an address belongs to this machine: loopback, unspecified, an interface's address,
    or anything else a socket can be bound to (a ``local`` route such as AnyIP ranges).

    Two sources, both without sending a packet: the kernel's tables (``/proc/net/fib_trie``'s
    ``host LOCAL`` entries, ``/proc/net/if_inet6``; Linux) and, for an address they do not hold,
    ``bind()`` on a fresh UDP socket: EADDRNOTAVAIL means not ours. The probe is skipped when
    ``ip_nonlocal_bind`` lets any address bind. Answers are cached for ``ttl_s`` seconds, since
    interfaces come and go (DHCP, a VPN) but every send asks.
    """

    MAX_CACHED = 4096

    def __init__(self, ttl_s: float = 10.0, proc: Path = Path("/proc")) -> None:
        self.ttl_s = ttl_s
        self._proc = proc
        self._lock = threading.Lock()
        self._tables: tuple[float, tuple[Network, ...]] = (-1e18, ())
        self._probed: dict[Address, tuple[float, bool]] = {}

    def holds(self, addr: Address) -> bool:
        if addr.is_loopback or addr.is_unspecified or (addr.version == 4 and addr in THIS_NETWORK):
            return True
        now = time.monotonic()
        with self._lock:
            at, networks = self._tables
            if now - at > self.ttl_s:
                networks = self._read_tables()
                self._tables = (now, networks)
            if any(addr.version == n.version and addr in n for n in networks):
                return True
            cached = self._probed.get(addr)
            if cached is not None and now - cached[0] <= self.ttl_s:
                return cached[1]
        mine = self._probe(addr)
        with self._lock:
            if len(self._probed) >= self.MAX_CACHED:
                self._probed.clear()
            self._probed[addr] = (now, mine)
        return mine

    def _read_tables(self) -> tuple[Network, ...]:
        out: list[Network] = []
        with contextlib.suppress(OSError, ValueError):
            last = ""
            for line in (self._proc / "net" / "fib_trie").read_text().splitlines():
                text = line.strip()
                if text.startswith("|-- "):
                    last = text[4:]
                elif text.startswith("/") and text.endswith("host LOCAL") and last:
                    out.append(ipaddress.ip_network(f"{last}{text.split()[0]}", strict=False))
        with contextlib.suppress(OSError, ValueError):
            for line in (self._proc / "net" / "if_inet6").read_text().splitlines():
                hexaddr = line.split()[0]
                out.append(ipaddress.ip_network(int(hexaddr, 16).to_bytes(16, "big")))
        with contextlib.suppress(OSError, ValueError):
            for info in socket.getaddrinfo(socket.gethostname(), None):
                out.append(ipaddress.ip_network(_address(str(info[4][0]))))
        return tuple(dict.fromkeys(out))

    def _probe(self, addr: Address) -> bool:
        family = socket.AF_INET if addr.version == 4 else socket.AF_INET6
        if self._nonlocal_bind(addr.version):
            return False  # bind() would succeed for any address; the tables above must do
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as sock:
                sock.bind((str(addr), 0))
        except OSError as err:
            # EADDRNOTAVAIL: not ours. Anything else (no IPv6 here; a link-local address without
            # its interface, which the tables above hold) cannot be told apart: not ours either.
            if err.errno != errno.EADDRNOTAVAIL:
                log.debug("local address probe of %s: %s", addr, err)
            return False
        return True

    def _nonlocal_bind(self, version: int) -> bool:
        path = self._proc / "sys" / "net" / ("ipv4" if version == 4 else "ipv6") / "ip_nonlocal_bind"
        try:
            return path.read_text().strip() not in ("", "0")
        except OSError:
            return False


LOCAL = LocalAddresses()
