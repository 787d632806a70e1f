"""The live-network guard blocks anything but this machine, loudly, and cleans up after itself."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
import requests

from tests.support import live_network_guard
from tests.support.live_network_guard import LiveNetworkError, install_guard, is_local_host

pytest_plugins = ["pytester"]


@pytest.fixture
def local_server() -> Iterator[int]:
    """A TCP listener on 127.0.0.1 that accepts and closes connections."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    server.close()
    thread.join(timeout=2)


def test_blocks_requests_to_api_twilio_com() -> None:
    with install_guard() as guard, pytest.raises(LiveNetworkError, match=r"api\.twilio\.com"):
        requests.post("https://api.twilio.com/2010-04-01/Accounts.json", timeout=1)
    assert len(guard.violations) == 1


def test_blocks_name_resolution_and_raw_connects() -> None:
    with install_guard() as guard:
        with pytest.raises(LiveNetworkError):
            socket.getaddrinfo("api.twilio.com", 443)
        with pytest.raises(LiveNetworkError):
            socket.create_connection(("api.twilio.com", 443), timeout=1)
        with socket.socket() as sock, pytest.raises(LiveNetworkError):
            sock.connect(("192.0.2.10", 443))  # TEST-NET-1: blocked before any packet
        with (
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
            pytest.raises(LiveNetworkError),
        ):
            udp.sendto(b"dns?", ("8.8.8.8", 53))
    assert len(guard.violations) == 4


def test_is_not_an_oserror_so_http_clients_cannot_swallow_it() -> None:
    assert not issubclass(LiveNetworkError, OSError)


def test_allows_loopback(local_server: int) -> None:
    with install_guard() as guard:
        with socket.create_connection(("127.0.0.1", local_server), timeout=2):
            pass
        with socket.create_connection(("localhost", local_server), timeout=2):
            pass
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", local_server)) == 0
    assert guard.violations == []


def test_is_local_host() -> None:
    for host in ("127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost", "LOCALHOST.", None, ""):
        assert is_local_host(host), host
    for host in (
        "api.twilio.com",
        "10.0.0.1",
        "192.168.1.2",
        "::ffff:8.8.8.8",
        "localhost.evil.com",
    ):
        assert not is_local_host(host), host
    assert is_local_host("::ffff:127.0.0.1")


def test_extra_allowed_hosts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(live_network_guard.ALLOWED_ENV, "postgres, redis")
    with install_guard(["db.internal"]) as guard:
        assert guard.allows("postgres")
        assert guard.allows("redis")
        assert guard.allows("db.internal")
        assert not guard.allows("api.twilio.com")


def test_uninstall_restores_the_socket_module() -> None:
    before = (socket.getaddrinfo, socket.gethostbyname, socket.socket.connect)
    with install_guard():
        assert socket.getaddrinfo is not before[0]
    assert (socket.getaddrinfo, socket.gethostbyname, socket.socket.connect) == before
    assert "connect" not in socket.socket.__dict__ or socket.socket.connect is before[2]


def test_as_a_plugin_fails_a_test_that_swallowed_the_error(pytester: pytest.Pytester) -> None:
    pytester.makeconftest("pytest_plugins = ['tests.support.live_network_guard']")
    pytester.makepyfile(
        """
        import requests

        def test_sneaky():
            try:
                requests.get("https://api.twilio.com/", timeout=1)
            except Exception:
                pass  # code under test hides the failure

        def test_local_is_fine():
            pass
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*test tried to reach the live network*api.twilio.com*"])
