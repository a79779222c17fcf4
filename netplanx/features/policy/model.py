"""Network policies in the spec: which endpoints a policy selects, and whom they may talk to.

Cilium's semantics: an endpoint selected by any policy with an ``ingress`` (or ``ingressDeny``) section is
default-deny for ingress, likewise for egress; unselected endpoints are open; deny rules win over allow.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator
from pydantic.functional_validators import AfterValidator

from netplanx.document.fields import Name, Network, SpecModel
from netplanx.files import display

ENTITIES = ("host", "world", "cluster", "remote-node", "all")
PROTOCOLS = ("tcp", "udp", "icmp", "any")
LABEL_KEY = re.compile(r"[A-Za-z0-9]([A-Za-z0-9_./-]{0,62}[A-Za-z0-9])?")


def _labels(value: dict[str, str]) -> dict[str, str]:
    for key, text in value.items():
        if not LABEL_KEY.fullmatch(key):
            raise ValueError(f"label key {key!r} is not valid (allowed: 1-64 letters, digits, '_', '.', '/', '-')")
        if not isinstance(text, str) or len(text) > 63 or "," in text or "=" in text:
            raise ValueError(f"label value {text!r} of {key} is not valid (allowed: text of at most 63 characters "
                             "without ',' or '=')")
    return value


Labels = Annotated[dict[str, str], AfterValidator(_labels),
                   Field(description="Label selector: every key must have this value ({} selects every endpoint).")]


class Peer(SpecModel):
    """The other side of a rule: endpoints by labels, a CIDR outside the cluster, or an entity."""

    labels: Labels | None = Field(None, description="Endpoints of the cluster whose labels include these.")
    cidr: Network | None = Field(None, description="Addresses outside the cluster's endpoints (IPv4 or IPv6 CIDR).")
    entity: Literal["host", "world", "cluster", "remote-node", "all"] | None = Field(
        None, description="host: this node; remote-node: the other nodes; world: outside the cluster; "
                          "cluster: every endpoint and node; all: anything.")

    @model_validator(mode="after")
    def _one(self) -> Peer:
        given = [k for k in ("labels", "cidr", "entity") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(f"a peer needs exactly one of labels, cidr, entity, got {len(given)} "
                             "(allowed: {labels: {app: web}}, {cidr: 198.51.100.0/24}, {entity: host})")
        return self


HEADER_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
MAX_HEADERS = 16  # every header is a condition of one HAProxy line, which takes at most 64 words


def _printable(value: str, what: str) -> str:
    if any(not c.isprintable() for c in value):
        raise ValueError(f"{what} '{display(value)}' has a control character (allowed: printable text)")
    return value


def _expression(value: str, what: str) -> str:
    from netplanx.features.policy.regex import compile_error

    _printable(value, what)
    error = compile_error(value)
    if error:
        raise ValueError(f"{what} '{value}' is not a regular expression HAProxy accepts: {error} (allowed: a "
                         "PCRE2 expression, matched against the whole value)")
    return value


def _header(value: str) -> str:
    name, _colon, _value = value.partition(":")
    if not HEADER_NAME.fullmatch(name.strip()):
        raise ValueError(f"header '{display(value)}' is not 'Name: value' or 'Name' (allowed: a name of 1-64 letters, "
                         "digits, '-' and '_', then optionally ': ' and the exact value)")
    return _printable(value, "header")


def _some(rules: list[Any]) -> list[Any]:
    if not rules:
        raise ValueError("http has no rule, so it would allow no request (allowed: at least one rule; {} allows any "
                         "request)")
    return rules


class HttpRule(SpecModel):
    """An HTTP request the rule allows (Cilium's shape): every field given must match; ``{}`` allows any request."""

    method: Annotated[str, AfterValidator(lambda v: _expression(v, "method"))] | None = Field(
        None, max_length=256, description="Regular expression the method must match in full (GET, GET|HEAD).")
    path: Annotated[str, AfterValidator(lambda v: _expression(v, "path"))] | None = Field(
        None, max_length=1024, description="Regular expression the path (as sent, without the query string) must "
                                           "match in full (/api/v1/.*).")
    headers: list[Annotated[str, AfterValidator(_header)]] = Field(
        default_factory=list, max_length=MAX_HEADERS,
        description="Headers the request must carry: 'Name: value' (exactly that value) or 'Name' (present).")

    def header_pairs(self) -> list[tuple[str, str | None]]:
        """(name, exact value or None for presence) of each header."""
        pairs: list[tuple[str, str | None]] = []
        for header in self.headers:
            name, colon, value = header.partition(":")
            pairs.append((name.strip(), value.strip() if colon else None))
        return pairs

    def text(self) -> str:
        """How plans and flows show the rule: ``GET /api/v1/.* [X-Team: blue]``."""
        parts = [self.method or "*", self.path or "*", *(f"[{h}]" for h in self.headers)]
        return " ".join(parts)


class L7Rules(SpecModel):
    """Application-protocol rules on a port: the connection goes through the node's proxy, which allows only
    the requests a rule matches (any other gets 403)."""

    http: Annotated[list[HttpRule], AfterValidator(_some)] = Field(
        description="HTTP requests allowed ({} allows any request).")


class PortRule(SpecModel):
    """A destination port (or range) and protocol; icmp and any take no port."""

    port: int | None = Field(None, ge=1, le=65535, description="Destination port (1-65535); unset: every port.")
    end_port: int | None = Field(None, alias="endPort", ge=1, le=65535,
                                 description="Last port of a range (port-endPort, both included).")
    protocol: Literal["tcp", "udp", "icmp", "any"] = Field("tcp", description="tcp, udp, icmp or any.")
    rules: L7Rules | None = Field(None, description="L7 rules (HTTP) on this port: requests no rule allows get 403.")

    @model_validator(mode="after")
    def _range(self) -> PortRule:
        if self.protocol in ("icmp", "any") and self.port is not None:
            raise ValueError(f"protocol {self.protocol} takes no port (allowed: port with tcp or udp)")
        if self.end_port is not None:
            if self.port is None:
                raise ValueError("endPort needs port (allowed: port: 8000, endPort: 8010)")
            if self.end_port < self.port:
                raise ValueError(f"endPort {self.end_port} is below port {self.port} (allowed: endPort >= port)")
        if self.rules is not None:
            if self.protocol != "tcp":
                raise ValueError(f"L7 rules need protocol tcp, not {self.protocol} (allowed: protocol: tcp, the "
                                 "default)")
            if self.port is None or self.end_port not in (None, self.port):
                raise ValueError("L7 rules need one port (allowed: port: 80, without endPort)")
        return self


class IngressRule(SpecModel):
    """Traffic into the selected endpoints from ``from`` (unset: any peer) on ``ports`` (unset: all)."""

    from_: list[Peer] | None = Field(None, alias="from", description="Peers; unset: any peer.")
    ports: list[PortRule] = Field(default_factory=list, description="Ports and protocols; empty: all.")

    @property
    def peers(self) -> list[Peer] | None:
        return self.from_


class EgressRule(SpecModel):
    """Traffic from the selected endpoints to ``to`` (unset: any peer) on ``ports`` (unset: all)."""

    to: list[Peer] | None = Field(None, description="Peers; unset: any peer.")
    ports: list[PortRule] = Field(default_factory=list, description="Ports and protocols; empty: all.")

    @property
    def peers(self) -> list[Peer] | None:
        return self.to


class Policy(SpecModel):
    """Selects endpoints by labels; each section present makes them default-deny in that direction."""

    name: Name
    selector: Labels = Field(description="Endpoints this policy applies to ({} selects every endpoint).")
    ingress: list[IngressRule] | None = Field(None, description="Allowed incoming traffic ([] allows none).")
    ingress_deny: list[IngressRule] | None = Field(None, alias="ingressDeny",
                                                   description="Denied incoming traffic (wins over allow).")
    egress: list[EgressRule] | None = Field(None, description="Allowed outgoing traffic ([] allows none).")
    egress_deny: list[EgressRule] | None = Field(None, alias="egressDeny",
                                                 description="Denied outgoing traffic (wins over allow).")

    @model_validator(mode="after")
    def _some_section(self) -> Policy:
        if all(getattr(self, k) is None for k in ("ingress", "ingress_deny", "egress", "egress_deny")):
            raise ValueError(f"policy {self.name} has no section (allowed: ingress, ingressDeny, egress, egressDeny)")
        return self

    def sections(self) -> list[tuple[str, str, list[Any]]]:
        """(direction, 'allow'|'deny', rules) for each section present, with its spec key."""
        found = []
        for key, direction, verdict in (("ingress", "ingress", "allow"), ("ingress_deny", "ingress", "deny"),
                                        ("egress", "egress", "allow"), ("egress_deny", "egress", "deny")):
            rules = getattr(self, key)
            if rules is not None:
                found.append((direction, verdict, rules))
        return found
