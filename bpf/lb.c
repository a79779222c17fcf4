/* netx L4 load balancer (IPv4 and IPv6, TCP and UDP): a Maglev-chosen backend for every new flow or socket
 * to a service VIP, on two paths that read the same maps (lb_maps.h):
 *
 * Packets (compiled with bcc; the loader pins them under /sys/fs/bpf/netx/<scope>/lb/prog-<version>/):
 *   lb_ingress  tc, where client traffic enters (an endpoint's host veth ingress, prio 100; a node device):
 *               DNAT (and SNAT when masqueraded), connection tracking so a flow keeps its backend
 *   lb_egress   tc, where replies leave towards the client (endpoint veth egress, prio 200; a node device)
 *   lb_xdp      XDP variant of lb_ingress for a node's ingress device (replies: lb_egress on tc egress)
 * tc programs return TC_ACT_UNSPEC so the next filter (network policy) still sees the packet.
 *
 * Sockets (cgroup sock_addr hooks of the workloads' cgroup, attached with BPF links): a process's
 * connect()/sendmsg() to a VIP goes to a backend directly, so its packets carry the backend's address and
 * the packet programs have nothing to translate or track; recvmsg()/getpeername() report the VIP.
 *   lb_connect4/6 lb_sendmsg4/6 lb_recvmsg4/6 lb_peername4/6 lb_sock_release
 */
#include <uapi/linux/bpf.h>
#include <uapi/linux/pkt_cls.h>
#include <uapi/linux/if_ether.h>
#include <uapi/linux/ip.h>
#include <uapi/linux/ipv6.h>
#include <uapi/linux/in.h>
#include <uapi/linux/tcp.h>

#include "lb_maps.h"
#include "lb_packet.h"

#if !defined(LB_CT_TCP_SECONDS) || !defined(LB_CT_UDP_SECONDS) || !defined(LB_CT_CLOSE_SECONDS)
#error "the conntrack lifetimes LB_CT_*_SECONDS are passed by the loader"
#endif
#define NS_PER_SECOND 1000000000ULL
#define LB_CT_REFRESH_NS NS_PER_SECOND /* an entry's time is rewritten at most once a second */

/* bcc 0.26 declares bpf_get_socket_cookie() as returning u32 (the kernel's is u64) */
static __u64 (*socket_cookie)(void *ctx) = (void *)BPF_FUNC_get_socket_cookie;

/* ---- connection tracking ---- */

static __always_inline __u64 lifetime(__u8 proto, __u8 flags)
{
    if (flags & LB_CT_CLOSING)
        return LB_CT_CLOSE_SECONDS * NS_PER_SECOND;
    return (proto == IPPROTO_TCP ? LB_CT_TCP_SECONDS : LB_CT_UDP_SECONDS) * NS_PER_SECOND;
}

static __always_inline int alive(struct lb_ct_val *ct, __u8 proto, __u64 now)
{
    __u64 seen = ct->seen;
    return seen >= now || now - seen <= lifetime(proto, ct->flags);
}

/* A packet of the flow passed this entry's direction: its time, and closing on a FIN or RST. */
static __always_inline void touch(struct lb_ct_val *ct, struct flow *f, __u64 now)
{
    if ((f->tcp & LB_TCP_CLOSE) && !(ct->flags & LB_CT_CLOSING))
        ct->flags |= LB_CT_CLOSING;
    if (now > ct->seen + LB_CT_REFRESH_NS)
        ct->seen = now;
}

/* A forward entry whose own time is up is still in use while its reply entry is alive and its own. */
static __always_inline int forward_in_use(struct lb_ct_key *key, struct lb_ct_val *ct, __u64 now)
{
    if (alive(ct, key->proto, now))
        return 1;
    struct lb_ct_key other = {.src = ct->addr, .sport = ct->port, .proto = key->proto, .dir = LB_DIR_REPLY};
    if (lb_is_zero(&ct->nat_addr)) {
        other.dst = key->src;
        other.dport = key->sport;
    } else {
        other.dst = ct->nat_addr;
        other.dport = ct->nat_port;
        other.dir = LB_DIR_MASQ_REPLY;
    }
    struct lb_ct_val *peer = lb_ct.lookup(&other);
    return peer && alive(peer, key->proto, now) && lb_same(&peer->addr, &key->dst) && peer->port == key->dport;
}

/* The same for a reply entry (LB_DIR_REPLY or LB_DIR_MASQ_REPLY) and its forward entry. */
static __always_inline int reply_in_use(struct lb_ct_key *key, struct lb_ct_val *ct, __u64 now)
{
    if (alive(ct, key->proto, now))
        return 1;
    struct lb_ct_key other = {.dst = ct->addr, .dport = ct->port, .proto = key->proto, .dir = LB_DIR_FORWARD};
    if (key->dir == LB_DIR_MASQ_REPLY) {
        other.src = ct->nat_addr;
        other.sport = ct->nat_port;
    } else {
        other.src = key->dst;
        other.sport = key->dport;
    }
    struct lb_ct_val *peer = lb_ct.lookup(&other);
    return peer && alive(peer, key->proto, now) && lb_same(&peer->addr, &key->src) && peer->port == key->sport;
}

/* ---- what both paths share: the Maglev pick and the counters ---- */

/* The backend in slot ``hash % M`` of the service's Maglev row (0: none). */
static __always_inline __u32 maglev_pick(struct lb_svc_val *svc, __u32 hash)
{
    __u32 size = svc->size;
    if (size == 0 || svc->count == 0)
        return 0;
    __u32 slot = hash % size;
    __u32 id = svc->id;
    void *row = lb_maglev.lookup(&id);
    if (!row)
        return 0;
    __u32 *backend = bpf_map_lookup_elem(row, &slot);
    return backend ? *backend : 0;
}

static __always_inline void count_packet(__u32 backend, __u32 bytes)
{
    struct lb_stats *s = lb_stats.lookup(&backend);
    if (s) {
        s->packets += 1;
        s->bytes += bytes;
    }
}

static __always_inline void count_socket(__u32 backend)
{
    struct lb_stats *s = lb_stats.lookup(&backend);
    if (s)
        s->sockets += 1;
}

/* ---- packets ---- */

/* A free masquerade source port for a flow to ``be`` (0: none after a few probes). The port of a finished
 * flow (neither direction alive) is free again: its forward entry goes with it. One key is reused for every
 * lookup (the programs' stack is 512 bytes). */
static __always_inline __be16 masq_port(struct flow *f, struct lb_be_val *be, struct lb_addr *masq, __u64 now)
{
    __u32 h = flow_hash(&f->saddr, &f->daddr, f->sport, f->dport, f->proto, 0);
    struct lb_ct_key k = {.proto = f->proto};
    #pragma clang loop unroll(disable)
    for (int i = 0; i < 8; i++) {  /* a bounded loop: one iteration's code, not eight */
        __be16 port = bpf_htons(LB_MASQ_PORT_MIN + (h + i * 7919) % LB_MASQ_PORTS);
        k.src = be->addr;
        k.dst = *masq;
        k.sport = be->port;
        k.dport = port;
        k.dir = LB_DIR_MASQ_REPLY;
        struct lb_ct_val *old = lb_ct.lookup(&k);
        if (!old)
            return port;
        if (reply_in_use(&k, old, now))
            continue;
        k.src = old->nat_addr;
        k.dst = old->addr;
        k.sport = old->nat_port;
        k.dport = old->port;
        k.dir = LB_DIR_FORWARD;
        struct lb_ct_val *fwd = lb_ct.lookup(&k);
        if (fwd && fwd->nat_port == port && lb_same(&fwd->nat_addr, masq))
            lb_ct.delete(&k);
        return port;
    }
    return 0;
}

/* A new flow for a service: pick its backend with the service's Maglev table and record both directions
 * (with a ``masq`` address, the flow is also source-NATed to it). Returns the forward entry, or 0 when the
 * service has no usable backend. */
static __always_inline struct lb_ct_val *new_flow(struct flow *f, struct lb_ct_key *key, struct lb_svc_val *svc,
                                                  struct lb_addr *masq, __u64 now)
{
    __u32 bid = maglev_pick(svc, flow_hash(&f->saddr, &f->daddr, f->sport, f->dport, f->proto, svc->flags));
    if (!bid)
        return 0;
    struct lb_be_val *be = lb_be.lookup(&bid);
    if (!be || lb_is_v4(&be->addr) == f->v6)  /* a backend of the other family: no NAT46/64 here */
        return 0;
    struct lb_ct_key rkey = {.src = be->addr, .dst = f->saddr, .sport = be->port, .dport = f->sport,
                             .proto = f->proto, .dir = LB_DIR_REPLY};
    struct lb_ct_val val = {.addr = f->daddr, .port = f->dport, .backend = bid, .seen = now};
    __be16 port = 0;
    if (masq) {
        port = masq_port(f, be, masq, now);
        if (!port)
            return 0;
        rkey.dst = *masq;
        rkey.dport = port;
        rkey.dir = LB_DIR_MASQ_REPLY;
        val.nat_addr = f->saddr;
        val.nat_port = f->sport;
    }
    lb_ct.update(&rkey, &val);  /* the reply direction first: a reply never finds its flow half-recorded */
    val.addr = be->addr;
    val.port = be->port;
    if (masq) {
        val.nat_addr = *masq;
        val.nat_port = port;
    }
    lb_ct.update(key, &val);
    return lb_ct.lookup(key);
}

struct nat {
    struct lb_addr daddr;   /* new destination */
    struct lb_addr saddr;   /* new source (when snat) */
    __be16 dport;
    __be16 sport;
    __u32 backend;
    __u32 snat;
};

/* A SYN straight to an address (a backend reached directly, or through the socket programs) may reuse the
 * 4-tuple of an earlier translated flow whose reply entry is still there: its replies must not get the
 * VIP as source. */
static __always_inline void forget_reply(struct flow *f)
{
    struct lb_ct_key rkey = {.src = f->daddr, .dst = f->saddr, .sport = f->dport, .dport = f->sport,
                             .proto = f->proto, .dir = LB_DIR_REPLY};
    if (lb_ct.lookup(&rkey))  /* a lookup takes no lock; a delete of nothing would */
        lb_ct.delete(&rkey);
}

/* The translation of a packet entering the node, or 0 when it is none of ours: a client's packet to a
 * service (DNAT, and SNAT when masqueraded) or the reply to a masqueraded flow. -1: drop. */
static __always_inline int translate(struct flow *f, __u32 ifindex, struct nat *nat)
{
    __u64 now;  /* read only where an entry is found or made: traffic that is no service's never needs it */
    /* the reply to a masqueraded flow: it may enter anywhere (underlay from another node, a local backend's
     * veth), so it is looked for on every packet */
    struct lb_ct_key key = {.src = f->saddr, .dst = f->daddr, .sport = f->sport, .dport = f->dport,
                            .proto = f->proto, .dir = LB_DIR_MASQ_REPLY};
    struct lb_ct_val *ct = lb_ct.lookup(&key);
    if (ct) {
        now = bpf_ktime_get_coarse_ns();
        if (!reply_in_use(&key, ct, now)) {
            lb_ct.delete(&key);
            return 0;
        }
        touch(ct, f, now);
        nat->daddr = ct->nat_addr;
        nat->dport = ct->nat_port;
        nat->saddr = ct->addr;
        nat->sport = ct->port;
        nat->snat = 1;
        return 1;
    }
    /* a SYN of a flow still open is its retransmission (the answer was lost or is late): it keeps the flow's
     * backend and masquerade port, or the backend would get a second connection whose answer resets the
     * first. A SYN after the flow was closed (FIN or RST seen) starts a new one: the client reuses its port. */
    key.dir = LB_DIR_FORWARD;
    ct = lb_ct.lookup(&key);
    if (ct) {
        now = bpf_ktime_get_coarse_ns();
        if (forward_in_use(&key, ct, now) && !((f->tcp & LB_TCP_SYN) && (ct->flags & LB_CT_CLOSING)))
            touch(ct, f, now);
        else
            ct = 0;
    }
    if (!ct) {
        struct lb_svc_key skey = {.vip = f->daddr, .port = f->dport, .proto = f->proto};
        struct lb_svc_val *svc = lb_svc.lookup(&skey);
        if (!svc) {
            if (f->tcp & LB_TCP_SYN)
                forget_reply(f);
            return 0;
        }
        now = bpf_ktime_get_coarse_ns();
        struct lb_masq *masq = lb_masq.lookup(&ifindex);
        struct lb_addr *source = masq ? (f->v6 ? &masq->v6 : &masq->v4) : 0;
        ct = new_flow(f, &key, svc, source && !lb_is_zero(source) ? source : 0, now);
        if (!ct)
            return -1;
    }
    nat->daddr = ct->addr;
    nat->dport = ct->port;
    nat->saddr = ct->nat_addr;
    nat->sport = ct->nat_port;
    nat->snat = !lb_is_zero(&ct->nat_addr);
    nat->backend = ct->backend;
    return 1;
}

static __always_inline __u32 csum_off(struct flow *f)
{
    return f->l4off + (f->proto == IPPROTO_TCP ? offsetof(struct tcphdr, check) : 6);
}

/* Rewrite an address and port (destination or source) with the kernel's checksum helpers: they handle
 * CHECKSUM_PARTIAL packets (TX offload on) and complete checksums alike. IPv6 has no header checksum; its
 * 16-byte change enters the L4 checksum (pseudo-header) as one difference. UDP: a checksum that comes out 0
 * is written 0xffff (BPF_F_MARK_MANGLED_0), as IPv6 requires. */
static __always_inline int rewrite(struct __sk_buff *skb, struct flow *f, int dst, struct lb_addr *addr,
                                   __be16 port)
{
    struct lb_addr *old = dst ? &f->daddr : &f->saddr;
    __be16 old_port = dst ? f->dport : f->sport;
    __u32 port_off = f->l4off + (dst ? 2 : 0);
    __u64 mangled = f->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
    __u32 coff = csum_off(f);
    if (f->v6) {
        __u32 addr_off = ETH_HLEN + (dst ? offsetof(struct ipv6hdr, daddr) : offsetof(struct ipv6hdr, saddr));
        __s64 diff = bpf_csum_diff(old->w, sizeof(old->w), addr->w, sizeof(addr->w), 0);
        if (bpf_l4_csum_replace(skb, coff, 0, diff, BPF_F_PSEUDO_HDR | mangled) < 0)
            return -1;
        if (bpf_skb_store_bytes(skb, addr_off, addr->w, sizeof(addr->w), 0) < 0)
            return -1;
    } else {
        __u32 addr_off = ETH_HLEN + (dst ? offsetof(struct iphdr, daddr) : offsetof(struct iphdr, saddr));
        __be32 from = old->w[3], to = addr->w[3];
        if (bpf_l4_csum_replace(skb, coff, from, to, BPF_F_PSEUDO_HDR | mangled | sizeof(to)) < 0)
            return -1;
        if (bpf_l3_csum_replace(skb, ETH_HLEN + offsetof(struct iphdr, check), from, to, sizeof(to)) < 0)
            return -1;
        if (bpf_skb_store_bytes(skb, addr_off, &to, sizeof(to), 0) < 0)
            return -1;
    }
    if (old_port != port) {
        if (bpf_l4_csum_replace(skb, coff, old_port, port, mangled | sizeof(port)) < 0)
            return -1;
        if (bpf_skb_store_bytes(skb, port_off, &port, sizeof(port), 0) < 0)
            return -1;
    }
    return 0;
}

int lb_ingress(struct __sk_buff *skb)
{
    struct flow f = {};
    if (parse_flow((void *)(long)skb->data, (void *)(long)skb->data_end, &f) < 0)
        return TC_ACT_UNSPEC;
    struct nat nat = {};
    int found = translate(&f, skb->ifindex, &nat);
    if (found == 0)
        return TC_ACT_UNSPEC;
    if (found < 0)
        return TC_ACT_SHOT;  /* a service without backends: refuse, as a real service would */
    if (nat.backend)
        count_packet(nat.backend, skb->len);
    if (rewrite(skb, &f, 1, &nat.daddr, nat.dport) < 0)
        return TC_ACT_SHOT;
    if (nat.snat && rewrite(skb, &f, 0, &nat.saddr, nat.sport) < 0)
        return TC_ACT_SHOT;
    return TC_ACT_UNSPEC;
}

int lb_egress(struct __sk_buff *skb)
{
    struct flow f = {};
    if (parse_flow((void *)(long)skb->data, (void *)(long)skb->data_end, &f) < 0)
        return TC_ACT_UNSPEC;
    struct lb_ct_key key = {.src = f.saddr, .dst = f.daddr, .sport = f.sport, .dport = f.dport,
                            .proto = f.proto, .dir = LB_DIR_REPLY};
    struct lb_ct_val *ct = lb_ct.lookup(&key);
    if (!ct)
        return TC_ACT_UNSPEC;
    __u64 now = bpf_ktime_get_coarse_ns();
    if (!reply_in_use(&key, ct, now)) {  /* the flow is over: this packet is another one's */
        lb_ct.delete(&key);
        return TC_ACT_UNSPEC;
    }
    touch(ct, &f, now);
    struct lb_addr addr = ct->addr;
    __be16 port = ct->port;
    if (rewrite(skb, &f, 0, &addr, port) < 0)
        return TC_ACT_SHOT;
    return TC_ACT_UNSPEC;
}

int lb_xdp(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data;
    void *data_end = (void *)(long)ctx->data_end;
    struct flow f = {};
    if (parse_flow(data, data_end, &f) < 0)
        return XDP_PASS;
    struct nat nat = {};
    int found = translate(&f, ctx->ingress_ifindex, &nat);
    if (found == 0)
        return XDP_PASS;
    if (found < 0)
        return XDP_DROP;
    if (nat.backend)
        count_packet(nat.backend, data_end - data);
    data = (void *)(long)ctx->data;
    data_end = (void *)(long)ctx->data_end;
    __u16 l4off = f.l4off & 0x7f;
    __u16 coff = l4off + (f.proto == IPPROTO_TCP ? offsetof(struct tcphdr, check) : 6);
    __u16 *l4sum = data + coff;
    __be16 *ports = data + l4off;
    if ((void *)(l4sum + 1) > data_end || (void *)(ports + 2) > data_end)
        return XDP_PASS;
    int l4 = f.proto == IPPROTO_TCP || f.v6 || *l4sum != 0;  /* IPv4 UDP without checksum stays without */
    __u16 sum = csum_addr(*l4sum, &f.daddr, &nat.daddr, f.v6);
    sum = csum_port(sum, f.dport, nat.dport);
    if (nat.snat) {
        sum = csum_addr(sum, &f.saddr, &nat.saddr, f.v6);
        sum = csum_port(sum, f.sport, nat.sport);
    }
    if (f.v6) {
        struct ipv6hdr *ip6 = data + ETH_HLEN;
        if ((void *)(ip6 + 1) > data_end)
            return XDP_PASS;
        __builtin_memcpy(&ip6->daddr, nat.daddr.w, sizeof(nat.daddr.w));
        if (nat.snat)
            __builtin_memcpy(&ip6->saddr, nat.saddr.w, sizeof(nat.saddr.w));
    } else {
        struct iphdr *ip = data + ETH_HLEN;
        if ((void *)(ip + 1) > data_end)
            return XDP_PASS;
        __u16 ipsum = csum_word(ip->check, f.daddr.w[3], nat.daddr.w[3]);
        ip->daddr = nat.daddr.w[3];
        if (nat.snat) {
            ipsum = csum_word(ipsum, f.saddr.w[3], nat.saddr.w[3]);
            ip->saddr = nat.saddr.w[3];
        }
        ip->check = ipsum;
    }
    ports[1] = nat.dport;
    if (nat.snat)
        ports[0] = nat.sport;
    if (l4)
        *l4sum = (f.proto == IPPROTO_UDP && sum == 0) ? 0xffff : sum;
    return XDP_PASS;
}

/* ---- sockets ---- */

#define SYS_REJECT 0
#define SYS_PROCEED 1
#define ECONNREFUSED 111
#define AF_INET 2
#define AF_INET6 10

/* user_port holds the port in network byte order in its first two bytes: read it whole */
static __always_inline __be16 ctx_port(struct bpf_sock_addr *ctx)
{
    volatile __u32 port = ctx->user_port;
    return (__be16)port;
}

/* The socket path's selection key (connect() has no source port): with clientIP affinity the tc path's hash
 * of the client address netx registered for the socket's network namespace (without one, of the namespace
 * cookie); otherwise the socket cookie, unique and stable for the socket's life (every sendmsg() of one UDP
 * socket goes to one backend). */
static __always_inline __u32 sock_hash(struct bpf_sock_addr *ctx, struct lb_svc_val *svc, struct lb_addr *vip)
{
    if (svc->flags & LB_AFFINITY_CLIENT_IP) {
        __u64 ns = bpf_get_netns_cookie(ctx);
        struct lb_sk_client *client = lb_sk_client.lookup(&ns);
        if (client) {
            struct lb_addr src = lb_is_v4(vip) ? client->v4 : client->v6;
            if (!lb_is_zero(&src))
                return flow_hash(&src, vip, 0, 0, 0, LB_AFFINITY_CLIENT_IP);
        }
        return fmix(mix(LB_HASH_SEED, (__u32)ns ^ (__u32)(ns >> 32)));
    }
    __u64 cookie = socket_cookie(ctx);
    return fmix(mix(mix(LB_HASH_SEED, (__u32)cookie), (__u32)(cookie >> 32)));
}

/* The backend for a socket that asked for ``key``: 0 not a service (leave the address alone), 1 translated
 * (``out``, ``port``), -1 a service without a usable backend. */
static __always_inline int sock_forward(struct bpf_sock_addr *ctx, struct lb_svc_key *key, struct lb_addr *out,
                                        __be16 *port)
{
    struct lb_svc_val *svc = lb_svc.lookup(key);
    if (!svc)
        return 0;
    __u32 bid = maglev_pick(svc, sock_hash(ctx, svc, &key->vip));
    if (!bid)
        return -1;
    struct lb_be_val *be = lb_be.lookup(&bid);
    if (!be || lb_is_v4(&be->addr) != lb_is_v4(&key->vip))
        return -1;
    struct lb_sk_rev_key rkey = {.cookie = socket_cookie(ctx), .addr = be->addr, .port = be->port};
    struct lb_sk_rev_val rval = {.vip = key->vip, .port = key->port, .svc = svc->id};
    if (lb_sk_rev.update(&rkey, &rval) < 0)
        return -1;
    count_socket(bid);
    *out = be->addr;
    *port = be->port;
    return 1;
}

static __always_inline int refuse(void)
{
    bpf_set_retval(-ECONNREFUSED);  /* as a service without endpoints answers (the default is EPERM) */
    return SYS_REJECT;
}

static __always_inline int forward4(struct bpf_sock_addr *ctx)
{
    if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
        return SYS_PROCEED;
    struct lb_svc_key key = {.port = ctx_port(ctx), .proto = ctx->protocol};
    lb_addr_v4(&key.vip, ctx->user_ip4);
    struct lb_addr backend;
    __be16 port;
    int found = sock_forward(ctx, &key, &backend, &port);
    if (found < 0)
        return refuse();
    if (found > 0) {
        ctx->user_ip4 = backend.w[3];
        ctx->user_port = (__u32)port;
    }
    return SYS_PROCEED;
}

static __always_inline int forward6(struct bpf_sock_addr *ctx)
{
    if (ctx->protocol != IPPROTO_TCP && ctx->protocol != IPPROTO_UDP)
        return SYS_PROCEED;
    struct lb_svc_key key = {.port = ctx_port(ctx), .proto = ctx->protocol};
    key.vip.w[0] = ctx->user_ip6[0];
    key.vip.w[1] = ctx->user_ip6[1];
    key.vip.w[2] = ctx->user_ip6[2];
    key.vip.w[3] = ctx->user_ip6[3];
    struct lb_addr backend;
    __be16 port;
    int found = sock_forward(ctx, &key, &backend, &port);
    if (found < 0)
        return refuse();
    if (found > 0) {  /* an IPv4-mapped VIP (a dual-stack socket) gets an IPv4-mapped backend */
        ctx->user_ip6[0] = backend.w[0];
        ctx->user_ip6[1] = backend.w[1];
        ctx->user_ip6[2] = backend.w[2];
        ctx->user_ip6[3] = backend.w[3];
        ctx->user_port = (__u32)port;
    }
    return SYS_PROCEED;
}

/* The address a socket sees (a datagram's source, its peer) back from backend to VIP. ``v6`` is a constant:
 * the verifier refuses a v4 hook's program that merely contains a store to user_ip6, even on a branch that
 * never runs for it. */
static __always_inline int reverse(struct bpf_sock_addr *ctx, struct lb_sk_rev_key *rkey, const int v6)
{
    rkey->cookie = socket_cookie(ctx);
    rkey->port = ctx_port(ctx);
    struct lb_sk_rev_val *rval = lb_sk_rev.lookup(rkey);
    if (!rval)
        return SYS_PROCEED;
    if (!v6) {
        ctx->user_ip4 = rval->vip.w[3];
    } else {
        ctx->user_ip6[0] = rval->vip.w[0];
        ctx->user_ip6[1] = rval->vip.w[1];
        ctx->user_ip6[2] = rval->vip.w[2];
        ctx->user_ip6[3] = rval->vip.w[3];
    }
    ctx->user_port = (__u32)rval->port;
    return SYS_PROCEED;
}

static __always_inline int reverse4(struct bpf_sock_addr *ctx)
{
    struct lb_sk_rev_key rkey = {};
    lb_addr_v4(&rkey.addr, ctx->user_ip4);
    return reverse(ctx, &rkey, 0);
}

static __always_inline int reverse6(struct bpf_sock_addr *ctx)
{
    struct lb_sk_rev_key rkey = {};
    rkey.addr.w[0] = ctx->user_ip6[0];
    rkey.addr.w[1] = ctx->user_ip6[1];
    rkey.addr.w[2] = ctx->user_ip6[2];
    rkey.addr.w[3] = ctx->user_ip6[3];
    return reverse(ctx, &rkey, 1);
}

int lb_connect4(struct bpf_sock_addr *ctx) { return forward4(ctx); }
int lb_connect6(struct bpf_sock_addr *ctx) { return forward6(ctx); }
int lb_sendmsg4(struct bpf_sock_addr *ctx) { return forward4(ctx); }
int lb_sendmsg6(struct bpf_sock_addr *ctx) { return forward6(ctx); }
int lb_recvmsg4(struct bpf_sock_addr *ctx) { return reverse4(ctx); }
int lb_recvmsg6(struct bpf_sock_addr *ctx) { return reverse6(ctx); }
int lb_peername4(struct bpf_sock_addr *ctx) { return reverse4(ctx); }
int lb_peername6(struct bpf_sock_addr *ctx) { return reverse6(ctx); }

/* close(): a connected socket's lb_sk_rev entry goes with it (an unconnected UDP socket's entries are left to
 * the LRU). */
int lb_sock_release(struct bpf_sock *sk)
{
    /* every field read at its constant offset before a compiler barrier: otherwise clang merges the
     * branches' loads through a moved ctx pointer, which the verifier refuses */
    __u32 family = sk->family;
    __be32 d4 = sk->dst_ip4;
    __be32 d6_0 = sk->dst_ip6[0], d6_1 = sk->dst_ip6[1], d6_2 = sk->dst_ip6[2], d6_3 = sk->dst_ip6[3];
    __be16 dport = sk->dst_port;
    asm volatile("" ::: "memory");
    if (family != AF_INET && family != AF_INET6)
        return 1;
    struct lb_sk_rev_key rkey = {.cookie = socket_cookie(sk), .port = dport};
    if (family == AF_INET) {
        lb_addr_v4(&rkey.addr, d4);
    } else {
        rkey.addr.w[0] = d6_0;
        rkey.addr.w[1] = d6_1;
        rkey.addr.w[2] = d6_2;
        rkey.addr.w[3] = d6_3;
    }
    lb_sk_rev.delete(&rkey);
    return 1;
}
