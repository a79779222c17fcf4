"""The node's HAProxy as netx runs it, in a namespace of the test's own: start, reload (a configuration that
does not load keeps the old worker, and the reload says so), stop by PID."""

from __future__ import annotations

import os
import select
import shutil
from collections.abc import Iterator

import pytest

from netplanx.errors import ProviderError
from netplanx.features.policy import haproxy
from netplanx.features.policy.l7scopes import HttpMatch, Scope
from netplanx.features.policy.proxy import Proxy
from netplanx.system import netns as namespaces
from tests.conftest import IS_ROOT

pytestmark = pytest.mark.skipif(not IS_ROOT or shutil.which("haproxy") is None, reason="needs root and haproxy")


@pytest.fixture
def proxy(netns: str) -> Iterator[Proxy]:
    made = Proxy(netns)
    try:
        yield made
    finally:
        made.stop()
        made.wipe()


def write(proxy: Proxy, path: str) -> str:
    """A configuration with one ingress scope allowing ``GET path``; its digest."""
    match = HttpMatch("web/ingress[0]/http[0]", "web/ingress[0]", frozenset({300}), "app=client", "GET", path, (),
                      f"GET {path}")
    scope = Scope("web-a", "ingress", 80, ("10.244.1.11",), (match,))
    files = {haproxy.MAIN: haproxy.render_main("node-a"), **haproxy.render_maps([scope], {"10.244.2.0/24": (300, "")})}
    texts = {f"{haproxy.SCOPES}/{haproxy.scope_file(scope.name)}": haproxy.render_scope(scope)}
    digest = haproxy.digest({**files, **texts})
    proxy.prepare()
    for name, text in {**files, **texts}.items():
        (proxy.folder / name).write_text(haproxy.fill(text, str(proxy.folder), digest))
    return digest


def test_start_reload_and_a_reload_that_fails(proxy: Proxy, netns: str):
    first = write(proxy, "/a")
    namespaces.call_inside(netns, proxy.start)  # HAProxy binds its listener in the node's namespace
    master = proxy.pid()
    assert master is not None and proxy.running_digest(proxy.info()) == first
    second = write(proxy, "/b")
    proxy.reload()
    assert proxy.pid() == master and proxy.running_digest(proxy.info()) == second
    assert "[failed: 0]" in proxy.master("show proc")
    write(proxy, "/(unclosed")  # HAProxy refuses the expression: the new worker never starts
    with pytest.raises(ProviderError, match=r"HAProxy did not reload: .*regex"):
        proxy.reload()
    assert proxy.running_digest(proxy.info()) == second  # the old worker serves on
    assert "[failed: 1]" in proxy.master("show proc")
    handle = os.pidfd_open(master)
    try:
        proxy.stop()
        assert select.select([handle], [], [], 0)[0]  # gone, workers with it
    finally:
        os.close(handle)
    assert proxy.pid() is None and not proxy.master_socket.exists()


def test_a_configuration_that_does_not_load_is_an_error_with_haproxy_s_words(proxy: Proxy, netns: str):
    write(proxy, "/a")
    (proxy.scopes / "broken.cfg").write_text("backend broken\n    no-such-keyword\n")
    with pytest.raises(ProviderError, match=r"HAProxy did not start \(exit status 1\): .*no-such-keyword"):
        namespaces.call_inside(netns, proxy.start)
    assert proxy.pid() is None
