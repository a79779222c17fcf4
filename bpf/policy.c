/* Network policy enforcement on an endpoint's host-side veth (tc, direct action).
 *
 * from_endpoint runs on the veth's ingress hook (packets the endpoint sends: its egress policy, after the
 * service LB at prio 100 has chosen a backend); to_endpoint runs on the egress hook (packets to the
 * endpoint: its ingress policy, before the LB's reverse NAT at prio 200). Allow is TC_ACT_UNSPEC (the
 * next filter runs), deny is TC_ACT_SHOT. Replies of allowed connections pass through connection tracking.
 *
 * L7 rules: an entry with ``proxy`` redirects the connection to the node's proxy by marking every packet of
 * its forward direction (see policy.h). Egress rules are decided in from_endpoint. Ingress rules are decided at
 * the packet's first hop on this node (ingress_entry): the sending endpoint's from_endpoint, or from_remote on
 * the devices traffic from other nodes comes in by (underlay, tunnel, WireGuard); to_endpoint runs after
 * routing, too late for tproxy, so it drops what should have been redirected and was not.
 */
#include <uapi/linux/bpf.h>
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
#include <uapi/linux/ipv6.h>
#include <uapi/linux/in.h>
#include <uapi/linux/tcp.h>
#include <uapi/linux/udp.h>
#include <uapi/linux/pkt_cls.h>
#include "policy.h"

BPF_TABLE_PINNED("lpm_trie", struct pol_key, struct pol_value, netx_pol_policy, POLICY_ENTRIES, PIN_DIR "/policy",
                 BPF_F_NO_PREALLOC);
BPF_TABLE_PINNED("lpm_trie", struct ip_key, struct ip_value, netx_pol_ipcache, IPCACHE_ENTRIES, PIN_DIR "/ipcache",
                 BPF_F_NO_PREALLOC);
BPF_TABLE_PINNED("lru_hash", struct ct_key, struct ct_value, netx_pol_ct, CT_ENTRIES, PIN_DIR "/ct");
BPF_TABLE_PINNED("percpu_array", u32, struct rule_stats, netx_pol_stats, RULE_SLOTS, PIN_DIR "/stats");
BPF_TABLE_PINNED("hash", struct name_key, struct name_value, netx_pol_names, NAME_ENTRIES, PIN_DIR "/names");
BPF_TABLE_PINNED("hash", struct ep_key, struct ep_value, netx_pol_endpoints, ENDPOINT_ENTRIES, PIN_DIR "/endpoints");
/* BPF_RINGBUF_OUTPUT's table, pinned like the others (bcc has no pinned ring buffer macro) */
struct netx_pol_flows_table_t {
    int key;
    u32 leaf;
    int (*ringbuf_output)(void *, u64, u64);
    void *(*ringbuf_reserve)(u64);
    void (*ringbuf_discard)(void *, u64);
    void (*ringbuf_submit)(void *, u64);
    u32 max_entries;
};
__attribute__((section("maps/ringbuf:" PIN_DIR "/flows")))
struct netx_pol_flows_table_t netx_pol_flows = {.max_entries = RINGBUF_BYTES};

struct tuple {
    u8 saddr[16];
    u8 daddr[16];
    u16 sport;
    u16 dport;
    u8 protocol;
};

#define KIND_PASS 0      /* not IP, or IPv6 neighbour discovery: not policy's business */
#define KIND_PACKET 4    /* judged by its tuple */
#define KIND_REPLY 5     /* an echo reply: only conntrack lets it through */
#define KIND_REQUEST 7   /* an echo request: never taken for a reply */

static __always_inline void mapped(u8 *to, u32 addr)
{
    __builtin_memset(to, 0, 10);
    to[10] = 0xff;
    to[11] = 0xff;
    __builtin_memcpy(to + 12, &addr, 4);
}

/* Ports of TCP and UDP; for echo requests and replies the echo id on both sides, so that a reply's
 * reversed tuple finds the request. */
static __always_inline int layer4(struct tuple *t, void *l4, void *end, u8 echo, u8 echo_reply)
{
    if (t->protocol == IPPROTO_TCP || t->protocol == IPPROTO_UDP) {
        u16 *ports = l4;
        if ((void *)(ports + 2) > end)
            return -1;
        t->sport = bpf_ntohs(ports[0]);
        t->dport = bpf_ntohs(ports[1]);
        return KIND_PACKET;
    }
    if (t->protocol == IPPROTO_ICMP || t->protocol == IPPROTO_ICMPV6) {
        u8 *icmp = l4;
        if ((void *)(icmp + 8) > end)
            return -1;
        if (t->protocol == IPPROTO_ICMPV6 && icmp[0] >= 133 && icmp[0] <= 137)
            return KIND_PASS;  /* router and neighbour discovery */
        if (icmp[0] == echo || icmp[0] == echo_reply) {
            t->sport = ((u16)icmp[4] << 8) | icmp[5];
            t->dport = t->sport;
            return icmp[0] == echo ? KIND_REQUEST : KIND_REPLY;
        }
    }
    return KIND_PACKET;
}

/* An IP packet starting at ``l3`` (``proto``: its EtherType, network order). */
static __always_inline int parse_ip(struct tuple *t, void *l3, void *end, u16 proto)
{
    if (proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = l3;
        if ((void *)(ip + 1) > end || ip->ihl < 5)
            return -1;
        mapped(t->saddr, ip->saddr);
        mapped(t->daddr, ip->daddr);
        t->protocol = ip->protocol;
        if (ip->frag_off & bpf_htons(0x1fff))
            return KIND_PACKET;  /* a later fragment: no ports; judged by address and protocol */
        return layer4(t, (void *)ip + ip->ihl * 4, end, 8, 0);
    }
    if (proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = l3;
        if ((void *)(ip6 + 1) > end)
            return -1;
        __builtin_memcpy(t->saddr, &ip6->saddr, 16);
        __builtin_memcpy(t->daddr, &ip6->daddr, 16);
        t->protocol = ip6->nexthdr;  /* extension headers: judged by address and that header */
        return layer4(t, ip6 + 1, end, 128, 129);
    }
    return KIND_PASS;  /* ARP and other non-IP */
}

static __always_inline int parse(struct __sk_buff *skb, struct tuple *t)
{
    void *data = (void *)(long)skb->data;
    void *end = (void *)(long)skb->data_end;
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > end)
        return -1;
    return parse_ip(t, eth + 1, end, eth->h_proto);
}

static __always_inline u32 identity_of(u8 *addr)
{
    struct ip_key key = {.prefixlen = 128};
    __builtin_memcpy(key.addr, addr, 16);
    struct ip_value *found = netx_pol_ipcache.lookup(&key);
    return found ? found->identity : 2;  /* world */
}

/* The longest entry for this peer, (id, proto, port block) before (id, proto, *) before (id, *, *); then
 * the same for any peer. */
static __always_inline struct pol_value *decide(u32 ifindex, u8 egress, u32 identity, u8 protocol, u16 port)
{
    struct pol_key key = {.prefixlen = POL_PREFIX_PORT, .ifindex = ifindex, .identity = identity,
                          .egress = egress, .protocol = protocol, .port = bpf_htons(port)};
    struct pol_value *v = netx_pol_policy.lookup(&key);
    if (v)
        return v;
    key.identity = 0;
    return netx_pol_policy.lookup(&key);
}

static __always_inline void count(u32 rule, u32 length)
{
    struct rule_stats *stats = netx_pol_stats.lookup(&rule);
    if (stats) {
        stats->packets += 1;
        stats->bytes += length;
    }
}

static __always_inline void report(struct tuple *t, u32 ifindex, u8 egress, u8 verdict, u8 reason, u32 rule,
                                   u32 peer_identity, u32 length)
{
    struct flow_event ev = {};
    ev.ts_ns = bpf_ktime_get_ns();
    __builtin_memcpy(ev.saddr, t->saddr, 16);
    __builtin_memcpy(ev.daddr, t->daddr, 16);
    ev.sport = t->sport;
    ev.dport = t->dport;
    ev.protocol = t->protocol;
    ev.verdict = verdict;
    ev.egress = egress;
    ev.reason = reason;
    ev.rule = rule;
    ev.ifindex = ifindex;
    ev.src_identity = egress ? identity_of(t->saddr) : peer_identity;
    ev.dst_identity = egress ? peer_identity : identity_of(t->daddr);
    ev.length = length;
    netx_pol_flows.ringbuf_output(&ev, sizeof(ev), 0);
}

static __always_inline u64 lifetime(u8 protocol)
{
    return protocol == IPPROTO_TCP ? CT_LIFETIME_TCP : CT_LIFETIME_OTHER;
}

/* A live entry, its idle lifetime renewed once less than half of it is left (not one write per packet). */
static __always_inline struct ct_value *tracked(struct ct_key *key, u8 protocol, u64 now)
{
    struct ct_value *seen = netx_pol_ct.lookup(key);
    if (!seen || seen->expires < now)
        return 0;
    if (seen->expires - now < lifetime(protocol) / 2)
        seen->expires = now + lifetime(protocol);
    return seen;
}

static __always_inline void track_key(struct ct_key *ct, struct tuple *t, u32 ifindex, u8 egress, u8 reverse)
{
    ct->ifindex = ifindex;
    __builtin_memcpy(ct->saddr, reverse ? t->daddr : t->saddr, 16);
    __builtin_memcpy(ct->daddr, reverse ? t->saddr : t->daddr, 16);
    ct->sport = reverse ? t->dport : t->sport;
    ct->dport = reverse ? t->sport : t->dport;
    ct->protocol = t->protocol;
    ct->egress = reverse ? !egress : egress;
    ct->proxied = 0;
    ct->pad = 0;
}

/* L7: send the packet to the node's proxy (nftables tproxies it to the transparent listener). */
static __always_inline void to_proxy(struct __sk_buff *skb)
{
    skb->mark = (skb->mark & ~(u32)MARK_MASK) | MARK_TO_PROXY;
}

/* L7: a packet of the proxy's own upstream connection (nftables marks its sockets' packets on output; a mark
 * set inside an endpoint is cleared when the packet crosses the veth, so an endpoint cannot forge it). */
static __always_inline int from_proxy(struct __sk_buff *skb)
{
    return (skb->mark & MARK_MASK) == MARK_FROM_PROXY;
}

/* L7 ingress rules, at a packet's first hop on this node: when the destination is one of the node's endpoints
 * whose ingress entry for this peer and port goes through the proxy, the connection is redirected, and its
 * conntrack entry (under to_endpoint's own key) marks its later packets too. Plain allow and deny stay with
 * to_endpoint. */
static __always_inline void ingress_entry(struct __sk_buff *skb, struct tuple *t, int kind, u64 now)
{
    if (t->protocol != IPPROTO_TCP || kind != KIND_PACKET)
        return;
    struct ep_key endpoint = {};
    __builtin_memcpy(endpoint.addr, t->daddr, 16);
    struct ep_value *local = netx_pol_endpoints.lookup(&endpoint);
    if (!local)
        return;
    u32 ifindex = local->ifindex;
    struct ct_key ct = {};
    track_key(&ct, t, ifindex, 0, 0);
    struct ct_value *seen = tracked(&ct, t->protocol, now);
    if (seen) {
        if (seen->proxy)
            to_proxy(skb);
        return;
    }
    track_key(&ct, t, ifindex, 0, 1);  /* a reply of a connection the destination opened */
    if (tracked(&ct, t->protocol, now))
        return;
    u32 peer = identity_of(t->saddr);
    struct pol_value *v = decide(ifindex, 0, peer, t->protocol, t->dport);
    if (!v || v->deny || !v->proxy)
        return;
    struct ct_value created = {.expires = now + lifetime(t->protocol), .rule = v->rule, .proxy = 1};
    track_key(&ct, t, ifindex, 0, 0);
    netx_pol_ct.update(&ct, &created);
    count(v->rule, skb->len);
    report(t, ifindex, 0, 0, REASON_PROXY, v->rule, peer, skb->len);
    to_proxy(skb);
}

/* L7: the proxy's upstream connection into this endpoint. It carries the client's address (a transparent
 * upstream), so the endpoint's ingress policy judges it by the client's identity; an entry through the proxy
 * allows it (the proxy applied the rules). Its conntrack entries are flagged: a later connection of the client
 * itself with the same ports must never find them (that would bypass the proxy). */
static __always_inline int proxy_upstream(struct __sk_buff *skb, struct tuple *t, u32 ifindex, u64 now)
{
    struct ct_key ct = {};
    track_key(&ct, t, ifindex, 0, 0);
    ct.proxied = 1;
    struct ct_value *seen = tracked(&ct, t->protocol, now);
    if (seen) {
        count(seen->rule, skb->len);
        return TC_ACT_UNSPEC;
    }
    u32 peer = identity_of(t->saddr);
    struct pol_value *v = decide(ifindex, 0, peer, t->protocol, t->dport);
    if (!v || v->deny) {
        u32 rule = v ? v->rule : RULE_DEFAULT_DENY;
        count(rule, skb->len);
        report(t, ifindex, 0, 1, v ? REASON_POLICY : REASON_DEFAULT, rule, peer, skb->len);
        return TC_ACT_SHOT;
    }
    struct ct_value created = {.expires = now + lifetime(t->protocol), .rule = v->rule};
    netx_pol_ct.update(&ct, &created);
    count(v->rule, skb->len);
    return TC_ACT_UNSPEC;
}

static __always_inline int enforce(struct __sk_buff *skb, u8 egress)
{
    struct tuple t = {};
    int kind = parse(skb, &t);
    u32 ifindex = skb->ifindex;
    if (kind == KIND_PASS)
        return TC_ACT_UNSPEC;
    if (kind < 0)
        return TC_ACT_SHOT;
    u64 now = bpf_ktime_get_ns();
    struct ct_key ct = {};
    struct ct_value *seen = 0;
    if (kind != KIND_REQUEST) {  /* a reply of a connection this endpoint's policy allowed */
        track_key(&ct, &t, ifindex, egress, 1);
        seen = tracked(&ct, t.protocol, now);
        if (!seen && egress) {  /* a reply of the proxy's upstream connection into this endpoint */
            ct.proxied = 1;
            seen = tracked(&ct, t.protocol, now);
        }
        if (seen) {
            count(seen->rule, skb->len);
            return TC_ACT_UNSPEC;
        }
    }
    if (!egress && from_proxy(skb))  /* after the reply lookup: the proxy's replies to a client carry the mark too */
        return proxy_upstream(skb, &t, ifindex, now);
    if (kind != KIND_REPLY) {  /* an established connection */
        track_key(&ct, &t, ifindex, egress, 0);
        seen = tracked(&ct, t.protocol, now);
    }
    if (seen) {
        count(seen->rule, skb->len);
        if (!seen->proxy) {
            if (egress)
                ingress_entry(skb, &t, kind, now);
            return TC_ACT_UNSPEC;
        }
        if (egress) {
            to_proxy(skb);
            return TC_ACT_UNSPEC;
        }
        return TC_ACT_SHOT;  /* a packet of a redirected connection that did not go through the proxy */
    }
    u32 peer = identity_of(egress ? t.daddr : t.saddr);
    u8 protocol = t.protocol == IPPROTO_ICMPV6 ? IPPROTO_ICMP : t.protocol;  /* policies say icmp for both */
    struct pol_value *v = decide(ifindex, egress, peer, protocol, t.dport);
    if (!v || v->deny || (v->proxy && !egress)) {  /* an L7 entry here: not redirected at its first hop */
        u32 rule = v ? v->rule : RULE_DEFAULT_DENY;
        count(rule, skb->len);
        report(&t, ifindex, egress, 1, v ? REASON_POLICY : REASON_DEFAULT, rule, peer, skb->len);
        return TC_ACT_SHOT;
    }
    u8 proxy = v->proxy && t.protocol == IPPROTO_TCP;
    struct ct_value created = {.expires = now + lifetime(t.protocol), .rule = v->rule, .proxy = proxy};
    track_key(&ct, &t, ifindex, egress, 0);
    netx_pol_ct.update(&ct, &created);
    count(v->rule, skb->len);
    report(&t, ifindex, egress, 0, proxy ? REASON_PROXY : REASON_POLICY, v->rule, peer, skb->len);
    if (proxy)
        to_proxy(skb);
    else if (egress)
        ingress_entry(skb, &t, kind, now);
    return TC_ACT_UNSPEC;
}

int from_endpoint(struct __sk_buff *skb)
{
    return enforce(skb, 1);
}

int to_endpoint(struct __sk_buff *skb)
{
    return enforce(skb, 0);
}

/* L7 ingress redirects for packets from other nodes, on the tc ingress hook of an Ethernet device they come in
 * by (the underlay, the tunnel); never a verdict: to_endpoint judges what is not redirected. */
int from_remote(struct __sk_buff *skb)
{
    struct tuple t = {};
    int kind = parse(skb, &t);
    if (kind == KIND_PACKET)
        ingress_entry(skb, &t, kind, bpf_ktime_get_ns());
    return TC_ACT_UNSPEC;
}

/* The same on a device without an Ethernet header (WireGuard's TUN device). */
int from_remote_ip(struct __sk_buff *skb)
{
    struct tuple t = {};
    int kind = parse_ip(&t, (void *)(long)skb->data, (void *)(long)skb->data_end, skb->protocol);
    if (kind == KIND_PACKET)
        ingress_entry(skb, &t, kind, bpf_ktime_get_ns());
    return TC_ACT_UNSPEC;
}
