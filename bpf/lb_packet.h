/* netx L4 load balancer: what needs no map (bcc rewrites map calls in the main source file only, so
 * everything that touches a map stays in lb.c): addresses, parsing, the selection hash, checksums. */
#ifndef NETX_LB_PACKET_H
#define NETX_LB_PACKET_H

#define LB_HASH_SEED 0x6e657478

static __always_inline int lb_is_v4(const struct lb_addr *a)
{
    return a->w[0] == 0 && a->w[1] == 0 && a->w[2] == bpf_htonl(0xffff);
}

static __always_inline int lb_is_zero(const struct lb_addr *a)
{
    return (a->w[0] | a->w[1] | a->w[2] | a->w[3]) == 0;
}

static __always_inline int lb_same(const struct lb_addr *a, const struct lb_addr *b)
{
    return a->w[0] == b->w[0] && a->w[1] == b->w[1] && a->w[2] == b->w[2] && a->w[3] == b->w[3];
}

static __always_inline void lb_addr_v4(struct lb_addr *a, __be32 v4)
{
    a->w[0] = 0;
    a->w[1] = 0;
    a->w[2] = bpf_htonl(0xffff);
    a->w[3] = v4;
}

#define LB_TCP_SYN 1     /* SYN without ACK: a new connection */
#define LB_TCP_CLOSE 2   /* FIN or RST */

struct flow {
    struct lb_addr saddr;
    struct lb_addr daddr;
    __be16 sport;
    __be16 dport;
    __u8 proto;
    __u8 tcp;       /* LB_TCP_SYN, LB_TCP_CLOSE */
    __u8 v6;
    __u8 pad;
    __u16 l4off;
};

/* An IPv4 or IPv6 TCP/UDP packet (IPv4 fragments and IPv6 extension headers are not translated). */
static __always_inline int parse_flow(void *data, void *data_end, struct flow *f)
{
    struct ethhdr *eth = data;
    if ((void *)(eth + 1) > data_end)
        return -1;
    __u16 l4off;
    if (eth->h_proto == bpf_htons(ETH_P_IP)) {
        struct iphdr *ip = (void *)(eth + 1);
        if ((void *)(ip + 1) > data_end || ip->ihl < 5)
            return -1;
        if (ip->frag_off & bpf_htons(0x3fff))
            return -1;
        f->proto = ip->protocol;
        lb_addr_v4(&f->saddr, ip->saddr);
        lb_addr_v4(&f->daddr, ip->daddr);
        f->v6 = 0;
        l4off = ETH_HLEN + ip->ihl * 4;
    } else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
        struct ipv6hdr *ip6 = (void *)(eth + 1);
        if ((void *)(ip6 + 1) > data_end)
            return -1;
        f->proto = ip6->nexthdr;
        __builtin_memcpy(&f->saddr, &ip6->saddr, sizeof(f->saddr));
        __builtin_memcpy(&f->daddr, &ip6->daddr, sizeof(f->daddr));
        f->v6 = 1;
        l4off = ETH_HLEN + sizeof(struct ipv6hdr);
    } else {
        return -1;
    }
    if (f->proto != IPPROTO_TCP && f->proto != IPPROTO_UDP)
        return -1;
    __be16 *ports = data + l4off;
    if ((void *)(ports + 2) > data_end)
        return -1;
    f->sport = ports[0];
    f->dport = ports[1];
    f->l4off = l4off;
    f->tcp = 0;
    if (f->proto == IPPROTO_TCP) {
        struct tcphdr *tcp = (void *)ports;
        if ((void *)(tcp + 1) > data_end)
            return -1;
        if (tcp->syn && !tcp->ack)
            f->tcp |= LB_TCP_SYN;
        if (tcp->fin || tcp->rst)
            f->tcp |= LB_TCP_CLOSE;
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

/* An IPv4 address mixes its IPv4 word only: IPv4 flows hash as they did with 4-byte addresses. */
static __always_inline __u32 mix_addr(__u32 h, const struct lb_addr *a)
{
    if (lb_is_v4(a))
        return mix(h, a->w[3]);
    h = mix(h, a->w[0]);
    h = mix(h, a->w[1]);
    h = mix(h, a->w[2]);
    return mix(h, a->w[3]);
}

/* The selection hash of a flow (clientIP affinity: of the client address only). */
static __always_inline __u32 flow_hash(const struct lb_addr *saddr, const struct lb_addr *daddr, __be16 sport,
                                       __be16 dport, __u8 proto, __u32 flags)
{
    __u32 h = mix_addr(LB_HASH_SEED, saddr);
    if (!(flags & LB_AFFINITY_CLIENT_IP)) {
        h = mix_addr(h, daddr);
        h = mix(h, ((__u32)sport << 16) | dport);
        h = mix(h, proto);
    }
    return fmix(h);
}

/* RFC 1624 incremental update of a 16-bit one's complement checksum for a changed 32-bit word. */
static __always_inline __u16 csum_word(__u16 check, __u32 from, __u32 to)
{
    __u32 sum = (~check & 0xffff) + (~from & 0xffff) + (to & 0xffff) + ((~from >> 16) & 0xffff) + (to >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return ~sum & 0xffff;
}

static __always_inline __u16 csum_port(__u16 check, __u16 from, __u16 to)
{
    __u32 sum = (~check & 0xffff) + (~from & 0xffff) + to;
    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return ~sum & 0xffff;
}

/* The checksum for an address change: the IPv4 word, or all four words of an IPv6 address. */
static __always_inline __u16 csum_addr(__u16 check, const struct lb_addr *from, const struct lb_addr *to, int v6)
{
    if (!v6)
        return csum_word(check, from->w[3], to->w[3]);
    check = csum_word(check, from->w[0], to->w[0]);
    check = csum_word(check, from->w[1], to->w[1]);
    check = csum_word(check, from->w[2], to->w[2]);
    return csum_word(check, from->w[3], to->w[3]);
}

#endif
