/* Network policy datapath: the map layouts shared by bpf/policy.c and netplanx/features/policy/maps.py.
 * Keep the two in step: the Python side packs and unpacks these structures byte for byte. */
#ifndef NETX_POLICY_H
#define NETX_POLICY_H

#define POLICY_ENTRIES 65536
#define IPCACHE_ENTRIES 16384
#define CT_ENTRIES 65536
#define NAME_ENTRIES 32768
#define RULE_SLOTS 16384
#define RINGBUF_BYTES (256 * 1024)

#define RULE_DEFAULT_DENY 0
#define CT_LIFETIME_TCP (3600ULL * 1000000000ULL)   /* idle lifetime of a connection's entry */
#define CT_LIFETIME_OTHER (60ULL * 1000000000ULL)

#define REASON_POLICY 0    /* an entry of the policy map decided */
#define REASON_DEFAULT 1   /* enforced direction, no entry: default deny */
#define REASON_PROXY 2     /* allowed through the node's L7 proxy: the connection is redirected to it */

/* L7 (HTTP) rules: an entry with ``proxy`` set allows a TCP connection through the node's proxy. The tc programs
 * decide and mark (MARK_TO_PROXY); nftables (table inet netx-l7) tproxies marked packets to the proxy's
 * transparent listener, and policy routing (fwmark MARK_TO_PROXY/MARK_MASK -> a table with a local default
 * route) delivers them locally. nftables marks the packets of the proxy's own (transparent) sockets
 * MARK_FROM_PROXY on output: its upstream connections, which carry the client's address. */
#define MARK_MASK 0xf00
#define MARK_TO_PROXY 0x200
#define MARK_FROM_PROXY 0x300
#define ENDPOINT_ENTRIES 4096

/* Addresses are 16 bytes everywhere: IPv6 as is, IPv4 mapped (::ffff:a.b.c.d, prefix lengths + 96). */

/* policy map key: Cilium's (identity, direction, protocol, port prefix), plus the endpoint's host-side
 * ifindex (one map for the node's endpoints instead of one map per endpoint). The map is an LPM trie: an
 * entry matches the packets whose first ``prefixlen`` bits of (ifindex, identity, egress, protocol, port)
 * equal its own, and the longest match wins. Every entry covers ifindex, identity and direction
 * (POL_PREFIX_ANY: any protocol, any port); with a protocol, 8 bits more (POL_PREFIX_PROTOCOL: any port);
 * with ports, up to 16 bits of the port more: an aligned block of 2^(16 - bits) ports (a range is a few
 * such blocks; one port is POL_PREFIX_PORT). */
struct pol_key {
    u32 prefixlen;
    u32 ifindex;
    u32 identity;   /* 0: any peer (a second lookup) */
    u8 egress;      /* 0: into the endpoint, 1: out of it */
    u8 protocol;    /* 0 (with POL_PREFIX_ANY): any */
    u16 port;       /* destination port (first of the block), network order: its leading bits are the prefix */
};

#define POL_PREFIX_ANY 72
#define POL_PREFIX_PROTOCOL 80
#define POL_PREFIX_PORT 96

struct pol_value {
    u8 deny;
    u8 proxy;       /* allowed through the node's L7 proxy (TCP only) */
    u8 pad[2];
    u32 rule;       /* index in the rule counter array; names in the names map */
};

struct ip_key {
    u32 prefixlen;
    u8 addr[16];    /* network order */
};

struct ip_value {
    u32 identity;
    char name[44];  /* endpoint or node name, or cidr:... */
};

struct ct_key {
    u32 ifindex;
    u8 saddr[16];
    u8 daddr[16];
    u16 sport;
    u16 dport;
    u8 protocol;
    u8 egress;
    u8 proxied;     /* 1: an entry of the proxy's upstream connection, kept apart from the client's own tuples */
    u8 pad;
};

struct ct_value {
    u64 expires;    /* bpf_ktime_get_ns; an expired entry is a new connection again */
    u32 rule;
    u8 proxy;       /* the connection goes to the L7 proxy: every packet of its forward direction is marked */
    u8 pad[3];
};

/* The node's endpoints with L7 ingress rules (address -> host-side ifindex): a packet's first hop on the node
 * (the sender's veth, or the device it came in from another node) applies their ingress redirect before the
 * packet is routed, since tproxy works only before routing. */
struct ep_key {
    u8 addr[16];
};

struct ep_value {
    u32 ifindex;
};

struct rule_stats {
    u64 packets;
    u64 bytes;
};

struct name_key {
    u32 kind;       /* 1: rule, 2: identity */
    u32 id;
};

struct name_value {
    char text[64];
};

struct flow_event {
    u64 ts_ns;      /* bpf_ktime_get_ns */
    u8 saddr[16];
    u8 daddr[16];
    u16 sport;
    u16 dport;
    u8 protocol;
    u8 verdict;     /* 0 allowed, 1 dropped */
    u8 egress;      /* the endpoint's direction */
    u8 reason;
    u32 rule;
    u32 ifindex;
    u32 src_identity;
    u32 dst_identity;
    u32 length;
};

#endif
