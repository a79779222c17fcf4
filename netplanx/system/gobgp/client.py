"""A small client for gobgpd's gRPC API (the stubs come from scripts/gen_gobgp_api.py).

Reading the advertised paths is the expensive part of a plan: ListPath streams one gRPC message per
destination (27-80 us each in Python: 0.27-0.8 s for 10,000 here). A WatchEvent for best paths with
``init`` delivers the whole best-path table in one message instead (0.05 s for 10,000), so that is how netx reads
it; ListPath is the fallback when the dump does not arrive.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.empty_pb2 import Empty

from netplanx.errors import NetxError, ProviderError
from netplanx.system.gobgp.wire import bytes_field

DEFAULT_ADDRESS = "127.0.0.1:50051"
STREAM_CHUNK = 1000  # paths per AddPathStream message (measured: ~25,000 paths/s)
MAX_MESSAGE = 1 << 30  # a best-path dump of a large table is one message
# gRPC waits up to 120 s between reconnections by default: a restarted gobgpd would be found that late
RECONNECT_BACKOFF = [("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                     ("grpc.max_reconnect_backoff_ms", 1000)]


def session_state(number: int) -> str:
    """A BGP session state's name as netx shows it (``established``, ``active``...)."""
    from netplanx.system.gobgp.api import gobgp_pb2

    states = gobgp_pb2.PeerState.SessionState
    return states.Name(number).lower() if number in states.values() else "unknown"


@dataclass(frozen=True)
class GlobalConfig:
    asn: int
    router_id: str
    listen_port: int


class GobgpClient:
    """One channel to gobgpd; every failure becomes a message that says what to do."""

    def __init__(self, address: str = DEFAULT_ADDRESS, timeout: float = 5.0):
        from netplanx.system.gobgp.api import gobgp_pb2, gobgp_pb2_grpc

        self.address = address
        self.timeout = timeout
        self.api = gobgp_pb2
        self.channel = grpc.insecure_channel(address, options=[("grpc.max_receive_message_length", MAX_MESSAGE),
                                                               *RECONNECT_BACKOFF])
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

    def _call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        try:
            return getattr(self.stub, method)(request, timeout=timeout or self.timeout)
        except grpc.RpcError as exc:
            raise self._failure(method, exc) from None

    def _failure(self, method: str, exc: grpc.RpcError) -> NetxError:
        if exc.code() == grpc.StatusCode.UNAVAILABLE:
            return self._unreachable()
        if exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED:  # it accepted the call: it runs, but is slow or stuck
            return NetxError(f"gobgpd at {self.address} did not answer {method} in time: try again (or restart it)")
        return ProviderError(f"gobgpd refused {method}: {exc.details()}")

    def global_config(self) -> GlobalConfig:
        """The running global configuration (ASN 0 while BGP is not started)."""
        answer = getattr(self._call("GetBgp", self.api.GetBgpRequest()), "global")
        return GlobalConfig(answer.asn, answer.router_id, answer.listen_port)

    def start(self, asn: int, router_id: str, listen_port: int, restart_time: int = 0) -> None:
        """Start BGP; ``restart_time`` > 0: with graceful restart (gobgpd 3.10 keeps this global setting but
        neither reports it nor applies it to peers: each peer carries its own)."""
        restart = self.api.GracefulRestart(enabled=restart_time > 0, restart_time=restart_time)
        request = self.api.StartBgpRequest(**{"global": self.api.Global(asn=asn, router_id=router_id,
                                                                       listen_port=listen_port,
                                                                       graceful_restart=restart)})
        self._call("StartBgp", request)

    def stop(self) -> None:
        self._call("StopBgp", self.api.StopBgpRequest())

    def peers(self) -> list[Any]:
        """Every configured neighbour, with its session state and counters."""
        try:
            return [answer.peer for answer in self.stub.ListPeer(self.api.ListPeerRequest(), timeout=self.timeout)]
        except grpc.RpcError as exc:
            raise self._failure("ListPeer", exc) from None

    def add_peer(self, peer: Any) -> None:
        self._call("AddPeer", self.api.AddPeerRequest(peer=peer))

    def update_peer(self, peer: Any) -> None:
        self._call("UpdatePeer", self.api.UpdatePeerRequest(peer=peer))

    def delete_peer(self, address: str) -> None:
        self._call("DeletePeer", self.api.DeletePeerRequest(address=address))

    def wait_established(self, address: str, timeout: float) -> str:
        """Follow ``address``'s session until it is established or ``timeout`` passes; its last state."""
        request = self.api.WatchEventRequest(peer=self.api.WatchEventRequest.Peer())
        call = self.stub.WatchEvent(request, timeout=timeout)
        state = "unknown"
        try:
            for event in call:  # the current state of every peer first, then each change
                peer = event.peer.peer if event.HasField("peer") else None
                if peer is not None and peer.state.neighbor_address == address:
                    state = session_state(peer.state.session_state)
                    if state == "established":
                        break
        except grpc.RpcError as exc:
            if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise self._failure("WatchEvent", exc) from None
        finally:
            call.cancel()
        return state

    def destinations(self, family: Any) -> int:
        """How many destinations the global table holds for ``family`` (a cheap count)."""
        answer = self._call("GetTable", self.api.GetTableRequest(table_type=self.api.GLOBAL, family=family))
        return answer.num_destination

    def best_paths(self, families: Sequence[Any]) -> list[Any]:
        """The best path of every destination of the global table (advertised or learned)."""
        if not any(self.destinations(f) for f in families):
            return []
        try:
            for event in self.watch_best(timeout=self.timeout):
                return list(event)
        except NetxError:
            pass  # no dump arrived (the table emptied meanwhile, or an old gobgpd): list it
        return self._listed_best(families)

    def _listed_best(self, families: Sequence[Any]) -> list[Any]:
        paths = []
        try:
            for family in families:
                request = self.api.ListPathRequest(table_type=self.api.GLOBAL, family=family)
                for answer in self.stub.ListPath(request, timeout=self.timeout * 10):
                    paths += [p for p in answer.destination.paths if p.best]
        except grpc.RpcError as exc:
            raise self._failure("ListPath", exc) from None
        return paths

    def watch_best(self, timeout: float | None = None) -> Iterator[Sequence[Any]]:
        """Best-path changes as they happen, the first batch being the whole table (when it is not empty).

        Runs until gobgpd goes away (an error saying what to start) or ``timeout`` passes.
        """
        table = self.api.WatchEventRequest.Table(filters=[self.api.WatchEventRequest.Table.Filter(
            type=self.api.WatchEventRequest.Table.Filter.BEST, init=True)])
        call = self.stub.WatchEvent(self.api.WatchEventRequest(table=table), timeout=timeout)
        try:
            for event in call:
                if event.HasField("table"):
                    yield event.table.paths
        except grpc.RpcError as exc:
            raise self._failure("WatchEvent", exc) from None
        finally:
            call.cancel()

    def add_paths(self, paths: Sequence[bytes]) -> None:
        """Add (or, for paths marked as withdrawals, withdraw) paths in the global table, in bulk: ``paths``
        are serialized ``apipb.Path`` messages, sent as they are (AddPathStreamRequest field 3, table GLOBAL)."""
        stream = self.channel.stream_unary("/apipb.GobgpApi/AddPathStream", request_serializer=bytes,
                                           response_deserializer=Empty.FromString)
        requests = (b"".join(bytes_field(3, path) for path in paths[i:i + STREAM_CHUNK])
                    for i in range(0, len(paths), STREAM_CHUNK))
        try:
            stream(requests, timeout=self.timeout + len(paths) / 5000)
        except grpc.RpcError as exc:
            raise self._failure("AddPathStream", exc) from None

