"""GoBGP's gRPC stubs, generated at install time, against a real gobgpd on loopback."""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator

import pytest

from netplanx.errors import NetxError
from netplanx.system.gobgp.client import GobgpClient


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gobgpd() -> Iterator[str]:
    if shutil.which("gobgpd") is None:
        pytest.skip("gobgpd is not installed (scripts/install.sh --test installs it)")
    address = f"127.0.0.1:{free_port()}"
    daemon = subprocess.Popen(["gobgpd", "--api-hosts", address, "--pprof-disable", "--log-level", "warn"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield address
    finally:
        daemon.terminate()  # by PID: the process this test started
        daemon.wait(timeout=10)


def test_stubs_import_as_a_package():
    from netplanx.system.gobgp.api import attribute_pb2, gobgp_pb2, gobgp_pb2_grpc

    assert gobgp_pb2_grpc.GobgpApiStub and attribute_pb2.OriginAttribute
    assert gobgp_pb2.StartBgpRequest.DESCRIPTOR.fields_by_name["global"]


def test_global_configuration_round_trip(gobgpd):
    client = GobgpClient(gobgpd)
    try:
        client.wait_ready()
        assert client.global_config().asn == 0  # not started yet
        client.start(65001, "192.0.2.1", -1)  # -1: no BGP listener, API only
        config = client.global_config()
        assert (config.asn, config.router_id) == (65001, "192.0.2.1")
        client.stop()
        assert client.global_config().asn == 0
    finally:
        client.close()


def test_unreachable_gobgpd_says_what_to_start():
    client = GobgpClient(f"127.0.0.1:{free_port()}", timeout=1)
    try:
        with pytest.raises(NetxError, match=r"gobgpd is not reachable at 127\.0\.0\.1:\d+: start it"):
            client.global_config()
    finally:
        client.close()
