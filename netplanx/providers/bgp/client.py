"""A small client for gobgpd's gRPC API (the stubs come from scripts/gen_gobgp_api.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc

from netplanx.errors import NetxError, ProviderError

DEFAULT_ADDRESS = "127.0.0.1:50051"


@dataclass(frozen=True)
class GlobalConfig:
    asn: int
    router_id: str
    listen_port: int


class GobgpClient:
    """One channel to gobgpd; every failure becomes a message that says what to do."""

    def __init__(self, address: str = DEFAULT_ADDRESS, timeout: float = 5.0):
        from netplanx.providers.bgp.api import gobgp_pb2, gobgp_pb2_grpc

        self.address = address
        self.timeout = timeout
        self.api = gobgp_pb2
        self.channel = grpc.insecure_channel(address)
        self.stub = gobgp_pb2_grpc.GobgpApiStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def wait_ready(self) -> None:
        """Until gobgpd accepts connections (or the timeout passes: then an error saying what to start)."""
        try:
            grpc.channel_ready_future(self.channel).result(timeout=self.timeout)
        except grpc.FutureTimeoutError:
            raise self._unreachable() from None

    def _unreachable(self) -> NetxError:
        return NetxError(f"gobgpd is not reachable at {self.address}: start it (systemctl start gobgpd, see "
                         "examples/systemd/gobgpd.service) or point netx at its API address")

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self.stub, method)(request, timeout=self.timeout)
        except grpc.RpcError as exc:
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise self._unreachable() from None
            raise ProviderError(f"gobgpd refused {method}: {exc.details()}") from None

    def global_config(self) -> GlobalConfig:
        """The running global configuration (ASN 0 while BGP is not started)."""
        answer = getattr(self._call("GetBgp", self.api.GetBgpRequest()), "global")
        return GlobalConfig(answer.asn, answer.router_id, answer.listen_port)

    def start(self, asn: int, router_id: str, listen_port: int) -> None:
        request = self.api.StartBgpRequest(**{"global": self.api.Global(asn=asn, router_id=router_id,
                                                                       listen_port=listen_port)})
        self._call("StartBgp", request)

    def stop(self) -> None:
        self._call("StopBgp", self.api.StopBgpRequest())
