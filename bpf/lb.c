/* netx L4 load balancer (IPv4 TCP/UDP): DNAT of packets for a service VIP to a Maglev-chosen backend,
 * connection tracking so a flow keeps its backend, reverse NAT of the replies.
 *
 * Programs (compiled with bcc; the loader pins them under /sys/fs/bpf/netx/<scope>/lb/prog-<version>/):
 *   lb_ingress  tc, where client traffic enters (an endpoint's host veth ingress, prio 100; a node device)
 *   lb_egress   tc, where replies leave towards the client (endpoint veth egress, prio 200; a node device)
 *   lb_xdp      XDP variant of lb_ingress for a node's ingress device (replies: lb_egress on tc egress)
 * tc programs return TC_ACT_UNSPEC so the next filter (network policy) still sees the packet.
 */
#include <uapi/linux/bpf.h>
#include <uapi/linux/pkt_cls.h>
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
#include <uapi/linux/in.h>
#include <uapi/linux/tcp.h>

#include "lb_maps.h"

#define IP_OFF ETH_HLEN
#define IP_CSUM_OFF (IP_OFF + offsetof(struct iphdr, check))
#define IP_SRC_OFF (IP_OFF + offsetof(struct iphdr, saddr))
#define IP_DST_OFF (IP_OFF + offsetof(struct iphdr, daddr))

struct flow {
    __be32 saddr;
    __be32 daddr;
    __be16 sport;
    __be16 dport;
    __u8 proto;
    __u8 syn;       /* TCP SYN without ACK: a new connection */
    __u16 l4off;
};

static __always_inline int parse_flow(void *data, void *data_end, struct flow *f)
{
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
        return -1;
    struct iphdr *ip = (void *)(eth + 1);
    if ((void *)(ip + 1) > data_end || ip->ihl < 5)
        return -1;
    if (ip->frag_off & bpf_htons(0x3fff))  /* fragments are not translated */
        return -1;
    if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
        return -1;
    __u16 l4off = ETH_HLEN + ip->ihl * 4;
    __be16 *ports = data + l4off;
    if ((void *)(ports + 2) > data_end)
        return -1;
    f->saddr = ip->saddr;
    f->daddr = ip->daddr;
    f->sport = ports[0];
    f->dport = ports[1];
    f->proto = ip->protocol;
    f->l4off = l4off;
    f->syn = 0;
    if (ip->protocol == IPPROTO_TCP) {
        struct tcphdr *tcp = (void *)ports;
        if ((void *)(tcp + 1) > data_end)
            return -1;
        f->syn = tcp->syn && !tcp->ack;
    }
    return 0;
}

/* murmur3-style mixing: the same flow hashes to the same slot on every node */
static __always_inline __u32 mix(__u32 h, __u32 k)
{
    k *= 0xcc9e2d51;
    k = (k << 15) | (k >> 17);
    k *= 0x1b873593;
    h ^= k;
    h = (h << 13) | (h >> 19);
    return h * 5 + 0xe6546b64;
}

static __always_inline __u32 fmix(__u32 h)
{
    h ^= h >> 16;
    h *= 0x85ebca6b;
    h ^= h >> 13;
    h *= 0xc2b2ae35;
    h ^= h >> 16;
    return h;
}

static __always_inline __u32 flow_hash(struct flow *f, __u32 flags)
{
    __u32 h = mix(0x6e657478, f->saddr);
    if (!(flags & LB_AFFINITY_CLIENT_IP)) {
        h = mix(h, f->daddr);
        h = mix(h, ((__u32)f->sport << 16) | f->dport);
        h = mix(h, f->proto);
    }
    return fmix(h);
}

static __always_inline void count(__u32 backend, __u32 bytes)
{
    struct lb_stats *s = lb_stats.lookup(&backend);
    if (s) {
        s->packets += 1;
        s->bytes += bytes;
    }
}

/* A free masquerade source port for a flow to ``be`` (0: none free after a few probes). */
static __always_inline __be16 masq_port(struct flow *f, struct lb_be_val *be, __be32 masq)
{
    __u32 h = flow_hash(f, 0);
    #pragma unroll
    for (int i = 0; i < 8; i++) {
        __be16 port = bpf_htons(LB_MASQ_PORT_MIN + (h + i * 7919) % LB_MASQ_PORTS);
        struct lb_ct_key rkey = {.src = be->addr, .dst = masq, .sport = be->port, .dport = port,
                                 .proto = f->proto, .dir = LB_DIR_MASQ_REPLY};
        if (!lb_ct.lookup(&rkey))
            return port;
    }
    return 0;
}

/* A new flow for a service: pick its backend with the service's Maglev table and record both directions
 * (with ``masq``, the flow is also source-NATed to that address). Returns the forward entry, or 0 when
 * the service has no usable backend. */
static __always_inline struct lb_ct_val *new_flow(struct flow *f, struct lb_ct_key *key, struct lb_svc_val *svc,
                                                  __be32 masq)
{
    __u32 size = svc->size;
    if (size == 0 || svc->count == 0)
        return 0;
    __u32 slot = flow_hash(f, svc->flags) % size;
    __u32 id = svc->id;
    void *row = lb_maglev.lookup(&id);
    if (!row)
        return 0;
    __u32 *backend = bpf_map_lookup_elem(row, &slot);
    if (!backend)
        return 0;
    __u32 bid = *backend;
    struct lb_be_val *be = lb_be.lookup(&bid);
    if (!be)
        return 0;
    struct lb_ct_val fwd = {.addr = be->addr, .port = be->port, .backend = bid};
    struct lb_ct_key rkey = {.src = be->addr, .dst = f->saddr, .sport = be->port, .dport = f->sport,
                             .proto = f->proto, .dir = LB_DIR_REPLY};
    struct lb_ct_val rev = {.addr = f->daddr, .port = f->dport, .backend = bid};
    if (masq) {
        __be16 port = masq_port(f, be, masq);
        if (!port)
            return 0;
        fwd.nat_addr = masq;
        fwd.nat_port = port;
        rkey.dst = masq;
        rkey.dport = port;
        rkey.dir = LB_DIR_MASQ_REPLY;
        rev.nat_addr = f->saddr;
        rev.nat_port = f->sport;
    }
    lb_ct.update(&rkey, &rev);
    lb_ct.update(key, &fwd);
    return lb_ct.lookup(key);
}

struct nat {
    __be32 daddr;   /* new destination */
    __be16 dport;
    __be16 sport;   /* new source (when saddr is set) */
    __be32 saddr;
    __u32 backend;
};

/* The translation of a packet entering the node, or 0 when it is none of ours: a client's packet to a
 * service (DNAT, and SNAT when masqueraded) or the reply to a masqueraded flow. -1: drop. */
static __always_inline int translate(struct flow *f, __u32 ifindex, struct nat *nat)
{
    /* the reply to a masqueraded flow: it may enter anywhere (underlay from another node, a local backend's
     * veth), so it is looked for on every packet */
    struct lb_ct_key rkey = {.src = f->saddr, .dst = f->daddr, .sport = f->sport, .dport = f->dport,
                             .proto = f->proto, .dir = LB_DIR_MASQ_REPLY};
    struct lb_ct_val *rev = lb_ct.lookup(&rkey);
    if (rev) {
        nat->daddr = rev->nat_addr;
        nat->dport = rev->nat_port;
        nat->saddr = rev->addr;
        nat->sport = rev->port;
        nat->backend = 0;
        return 1;
    }
    struct lb_ct_key key = {.src = f->saddr, .dst = f->daddr, .sport = f->sport, .dport = f->dport,
                            .proto = f->proto, .dir = LB_DIR_FORWARD};
    struct lb_ct_val *ct = f->syn ? 0 : lb_ct.lookup(&key);
    if (!ct) {
        struct lb_svc_key skey = {.vip = f->daddr, .port = f->dport, .proto = f->proto};
        struct lb_svc_val *svc = lb_svc.lookup(&skey);
        if (!svc)
            return 0;
        struct lb_masq *masq = lb_masq.lookup(&ifindex);
        ct = new_flow(f, &key, svc, masq ? masq->addr : 0);
        if (!ct)
            return -1;
    }
    nat->daddr = ct->addr;
    nat->dport = ct->port;
    nat->saddr = ct->nat_addr;
    nat->sport = ct->nat_port;
    nat->backend = ct->backend;
    return 1;
}

static __always_inline __u16 csum_off(struct flow *f)
{
    return f->l4off + (f->proto == IPPROTO_TCP ? offsetof(struct tcphdr, check) : 6);
}

/* Rewrite an address and port (destination or source) with the kernel's checksum helpers: they handle
 * CHECKSUM_PARTIAL packets (TX offload on) and complete checksums alike. */
static __always_inline int rewrite(struct __sk_buff *skb, struct flow *f, int dst, __be32 addr, __be16 port)
{
    __be32 old_addr = dst ? f->daddr : f->saddr;
    __be16 old_port = dst ? f->dport : f->sport;
    __u32 addr_off = dst ? IP_DST_OFF : IP_SRC_OFF;
    __u32 port_off = f->l4off + (dst ? 2 : 0);
    __u64 mangled = f->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
    __u32 coff = csum_off(f);
    if (bpf_l4_csum_replace(skb, coff, old_addr, addr, BPF_F_PSEUDO_HDR | mangled | sizeof(addr)) < 0)
        return -1;
    if (old_port != port && bpf_l4_csum_replace(skb, coff, old_port, port, mangled | sizeof(port)) < 0)
        return -1;
    if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_addr, addr, sizeof(addr)) < 0)
        return -1;
    if (bpf_skb_store_bytes(skb, addr_off, &addr, sizeof(addr), 0) < 0)
        return -1;
    if (old_port != port && bpf_skb_store_bytes(skb, port_off, &port, sizeof(port), 0) < 0)
        return -1;
    return 0;
}

int lb_ingress(struct __sk_buff *skb)
{
    struct flow f;
    if (parse_flow((void *)(long)skb->data, (void *)(long)skb->data_end, &f) < 0)
        return TC_ACT_UNSPEC;
    struct nat nat;
    int found = translate(&f, skb->ifindex, &nat);
    if (found == 0)
        return TC_ACT_UNSPEC;
    if (found < 0)
        return TC_ACT_SHOT;  /* a service without backends: refuse, as a real service would */
    if (nat.backend)
        count(nat.backend, skb->len);
    if (rewrite(skb, &f, 1, nat.daddr, nat.dport) < 0)
        return TC_ACT_SHOT;
    if (nat.saddr && rewrite(skb, &f, 0, nat.saddr, nat.sport) < 0)
        return TC_ACT_SHOT;
    return TC_ACT_UNSPEC;
}

int lb_egress(struct __sk_buff *skb)
{
    struct flow f;
    if (parse_flow((void *)(long)skb->data, (void *)(long)skb->data_end, &f) < 0)
        return TC_ACT_UNSPEC;
    struct lb_ct_key key = {.src = f.saddr, .dst = f.daddr, .sport = f.sport, .dport = f.dport,
                            .proto = f.proto, .dir = LB_DIR_REPLY};
    struct lb_ct_val *ct = lb_ct.lookup(&key);
    if (!ct)
        return TC_ACT_UNSPEC;
    __be32 addr = ct->addr;
    __be16 port = ct->port;
    if (rewrite(skb, &f, 0, addr, port) < 0)
        return TC_ACT_SHOT;
    return TC_ACT_UNSPEC;
}

/* RFC 1624 incremental update of a 16-bit one's complement checksum. */
static __always_inline __u16 csum_update(__u16 check, __u32 from, __u32 to, int words)
{
    __u32 sum = (~check & 0xffff) + (~from & 0xffff) + (to & 0xffff);
    if (words == 2)
        sum += ((~from >> 16) & 0xffff) + (to >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return ~sum & 0xffff;
}

int lb_xdp(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct flow f;
    if (parse_flow(data, data_end, &f) < 0)
        return XDP_PASS;
    struct nat nat;
    int found = translate(&f, ctx->ingress_ifindex, &nat);
    if (found == 0)
        return XDP_PASS;
    if (found < 0)
        return XDP_DROP;
    if (nat.backend)
        count(nat.backend, data_end - data);
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;
    struct iphdr *ip = data + ETH_HLEN;
    if ((void *)(ip + 1) > data_end)
        return XDP_PASS;
    __u16 l4off = f.l4off & 0x7f;
    __u16 coff = l4off + (f.proto == IPPROTO_TCP ? offsetof(struct tcphdr, check) : 6);
    __u16 *l4sum = data + coff;
    __be16 *ports = data + l4off;
    if ((void *)(l4sum + 1) > data_end || (void *)(ports + 2) > data_end)
        return XDP_PASS;
    int l4 = f.proto == IPPROTO_TCP || *l4sum != 0;  /* UDP without checksum stays without */
    __u16 ipsum = csum_update(ip->check, f.daddr, nat.daddr, 2);
    __u16 sum = csum_update(*l4sum, f.daddr, nat.daddr, 2);
    sum = csum_update(sum, f.dport, nat.dport, 1);
    ip->daddr = nat.daddr;
    ports[1] = nat.dport;
    if (nat.saddr) {
        ipsum = csum_update(ipsum, f.saddr, nat.saddr, 2);
        sum = csum_update(sum, f.saddr, nat.saddr, 2);
        sum = csum_update(sum, f.sport, nat.sport, 1);
        ip->saddr = nat.saddr;
        ports[0] = nat.sport;
    }
    ip->check = ipsum;
    if (l4)
        *l4sum = (f.proto == IPPROTO_UDP && sum == 0) ? 0xffff : sum;
    return XDP_PASS;
}
