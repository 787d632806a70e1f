"""Make any test that reaches past this machine fail loudly.

A test that talks to the real Twilio (a forgotten ``api_base_url``, a new code path that builds its
own client) would ring real phones, spend money, and pass or fail by luck. The guard patches name
resolution and socket connects so that any host other than the loopback (127.0.0.0/8, ::1,
``localhost``) raises :class:`LiveNetworkError`.

Why not an ``OSError``: ``requests``/``urllib3`` turn OSErrors into ``ConnectionError``, which the
Twilio adapter classifies as RETRYABLE; the test could then pass while having tried to reach
Twilio. ``LiveNetworkError`` is a RuntimeError and goes through them untouched, and every attempt
is also recorded so the autouse fixture fails the test even if some code swallowed the error.

Use: ``pytest_plugins = ["tests.support.live_network_guard"]`` in a conftest (autouse fixture), or
``guard = install_guard(); ...; guard.uninstall()`` / ``with install_guard():`` directly. Hosts for
real service containers in CI (``postgres``, ``redis``) can be allowed with the environment
variable ``HOTLINE_TEST_ALLOWED_HOSTS`` (comma-separated) or the ``allowed_hosts`` argument.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Callable, Iterable, Iterator
from types import TracebackType
from typing import Any

import pytest

ALLOWED_ENV = "HOTLINE_TEST_ALLOWED_HOSTS"
LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


_INHERITED = object()


class LiveNetworkError(RuntimeError):
    """A test tried to reach a host other than this machine."""


def is_local_host(host: object) -> bool:
    """Loopback addresses and names only; ``None``/empty means the local wildcard."""
    if host is None or host in ("", b""):
        return True
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    name = host.strip("[]").split("%", 1)[0].lower().rstrip(".")
    if name in LOCAL_NAMES or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


class NetworkGuard:
    """The patches of one installation, and what they caught."""

    def __init__(self, allowed_hosts: Iterable[str] = ()) -> None:
        extra = [h for h in os.environ.get(ALLOWED_ENV, "").split(",") if h.strip()]
        self.allowed = frozenset(h.strip().lower() for h in [*allowed_hosts, *extra])
        self.violations: list[str] = []
        #: (owner, name) → the owner's own attribute, or _INHERITED when it had none.
        self._originals: dict[tuple[Any, str], Any] = {}

    def allows(self, host: object) -> bool:
        if is_local_host(host):
            return True
        if isinstance(host, bytes):
            host = host.decode("ascii", "replace")
        return isinstance(host, str) and host.strip("[]").lower().rstrip(".") in self.allowed

    def check(self, host: object, what: str) -> None:
        if not self.allows(host):
            message = f"test tried to reach the live network: {what} {host!r}"
            self.violations.append(message)
            raise LiveNetworkError(message)

    # -- install / uninstall -----------------------------------------------------------------

    def install(self) -> NetworkGuard:
        guard = self
        real_getaddrinfo = socket.getaddrinfo
        real_gethostbyname = socket.gethostbyname
        real_gethostbyname_ex = socket.gethostbyname_ex
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_sendto = socket.socket.sendto

        def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
            guard.check(host, "resolve")
            return real_getaddrinfo(host, *args, **kwargs)

        def gethostbyname(host: str) -> str:
            guard.check(host, "resolve")
            return real_gethostbyname(host)

        def gethostbyname_ex(host: str) -> Any:
            guard.check(host, "resolve")
            return real_gethostbyname_ex(host)

        def _address_host(sock: socket.socket, address: Any) -> object:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and isinstance(address, tuple):
                return address[0]
            return None  # AF_UNIX paths and other families stay on this machine

        def connect(sock: socket.socket, address: Any) -> None:
            guard.check(_address_host(sock, address), "connect to")
            real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> int:
            guard.check(_address_host(sock, address), "connect to")
            return real_connect_ex(sock, address)

        def sendto(sock: socket.socket, data: Any, *args: Any) -> int:
            address = args[-1] if args else None
            guard.check(_address_host(sock, address), "send to")
            return real_sendto(sock, data, *args)

        self._patch(socket, "getaddrinfo", getaddrinfo)
        self._patch(socket, "gethostbyname", gethostbyname)
        self._patch(socket, "gethostbyname_ex", gethostbyname_ex)
        self._patch(socket.socket, "connect", connect)
        self._patch(socket.socket, "connect_ex", connect_ex)
        self._patch(socket.socket, "sendto", sendto)
        return self

    def uninstall(self) -> None:
        for (owner, name), original in reversed(list(self._originals.items())):
            if original is _INHERITED:
                delattr(owner, name)  # socket.socket.connect lives on _socket.socket
            else:
                setattr(owner, name, original)
        self._originals.clear()

    def _patch(self, owner: Any, name: str, replacement: Callable[..., Any]) -> None:
        self._originals[(owner, name)] = owner.__dict__.get(name, _INHERITED)
        setattr(owner, name, replacement)

    def __enter__(self) -> NetworkGuard:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstall()


def install_guard(allowed_hosts: Iterable[str] = ()) -> NetworkGuard:
    """Block the live network now; ``uninstall()`` (or leave the ``with`` block) to restore."""
    return NetworkGuard(allowed_hosts).install()


@pytest.fixture(autouse=True)
def live_network_guard() -> Iterator[NetworkGuard]:
    """Autouse when this module is a pytest plugin: every test runs behind the guard."""
    guard = install_guard()
    try:
        yield guard
    finally:
        guard.uninstall()
    if guard.violations:
        pytest.fail("\n".join(guard.violations), pytrace=False)
