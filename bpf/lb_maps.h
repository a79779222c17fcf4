/* netx L4 load balancer: map layout shared by bpf/lb.c and netplanx/features/services/lbmaps.py (ctypes
 * mirrors of these structs). The loader versions the map pins by a digest of this file: any change here
 * makes new, empty maps; a change to lb.c alone keeps them (connection tracking survives an upgrade).
 * Addresses and ports are in network byte order. PIN_DIR is set by the loader (-DPIN_DIR="...").
 *
 * Dual stack: every address is 16 bytes (struct lb_addr), an IPv4 address stored IPv4-mapped
 * (::ffff:a.b.c.d), so one set of maps serves both families: a dual-stack service is two lb_svc entries
 * (one per VIP, each with its own id and Maglev row), and a dual-stack socket's connect() to ::ffff:VIP4
 * finds the IPv4 service with no code of its own. The tc/XDP programs and the socket programs (cgroup
 * sock_addr hooks) share lb_svc, lb_be and lb_maglev, so both pick from the same Maglev rows.
 */
#ifndef NETX_LB_MAPS_H
#define NETX_LB_MAPS_H

#define LB_MAX_SERVICES 65536
#define LB_MAX_BACKENDS 65536
#define LB_MAX_FLOWS 65536
#define LB_MAX_SOCKETS 65536
#define LB_MAX_CLIENTS 4096
#define LB_MAGLEV_TEMPLATE 251 /* inner arrays have their own size (BPF_F_INNER_MAP) */

#define LB_AFFINITY_CLIENT_IP 1

#define LB_DIR_FORWARD 0    /* client -> VIP: value is the backend */
#define LB_DIR_REPLY 1      /* backend -> client: value is the VIP (new source) */
#define LB_DIR_MASQ_REPLY 2 /* backend -> node (masqueraded flow): value is the VIP (new source) and the
                             * client (new destination, in nat_addr/nat_port) */

#define LB_CT_CLOSING 1 /* lb_ct_val.flags: a FIN or RST passed in this entry's direction */

/* Masquerade source ports LB_MASQ_PORT_MIN-LB_MASQ_PORT_MAX: the loader passes them (-D, from MASQ_PORTS in
 * netplanx/features/services/lbmaps.py); the node reserves the same range (net.ipv4.ip_local_reserved_ports,
 * which covers IPv6 sockets too), so that none of its own connections can share a 5-tuple with a
 * masqueraded flow. The conntrack lifetimes (LB_CT_*_SECONDS) come from CT_LIFETIMES there as well. */
#if !defined(LB_MASQ_PORT_MIN) || !defined(LB_MASQ_PORT_MAX)
#error "LB_MASQ_PORT_MIN and LB_MASQ_PORT_MAX are passed by the loader"
#endif
#define LB_MASQ_PORTS (LB_MASQ_PORT_MAX - LB_MASQ_PORT_MIN + 1)

/* An IPv6 address, or an IPv4 address as {0, 0, htonl(0xffff), v4} */
struct lb_addr {
    __be32 w[4];
};

/* lb_svc: (VIP, port, protocol) -> service */
struct lb_svc_key {
    struct lb_addr vip;
    __be16 port;
    __u8 proto;
    __u8 pad;
};

struct lb_svc_val {
    __u32 id;       /* key of lb_maglev and lb_names; backends carry it */
    __u32 count;    /* backends */
    __u32 size;     /* Maglev table size M (prime) */
    __u32 flags;    /* LB_AFFINITY_CLIENT_IP */
};

/* lb_be: backend id -> backend (of its service's VIP family) */
struct lb_be_val {
    struct lb_addr addr;
    __be16 port;
    __u16 weight;
    __u32 svc;      /* service id */
};

/* lb_ct (tc and XDP only): one entry per direction of a translated flow (LRU), alive while either
 * direction saw a packet within its lifetime (LB_CT_*_SECONDS; LB_CT_CLOSE_SECONDS after a FIN or RST) */
struct lb_ct_key {
    struct lb_addr src;
    struct lb_addr dst;
    __be16 sport;
    __be16 dport;
    __u8 proto;
    __u8 dir;
    __u16 pad;
};

struct lb_ct_val {
    struct lb_addr addr;      /* forward: backend address; replies: the VIP */
    struct lb_addr nat_addr;  /* forward: masquerade source address (zero: none); masquerade reply: client */
    __u64 seen;               /* last packet in this direction: bpf_ktime_get_coarse_ns() */
    __be16 port;              /* forward: backend port; replies: the service port */
    __be16 nat_port;          /* forward: masquerade source port (0: none); masquerade reply: client port */
    __u32 backend;            /* backend id */
    __u8 flags;               /* LB_CT_CLOSING */
    __u8 pad[7];
};

/* lb_masq: ifindex of a device whose incoming service traffic is masqueraded -> the source address of
 * each family (zero: that family is not masqueraded) */
struct lb_masq {
    struct lb_addr v4;
    struct lb_addr v6;
};

/* lb_stats: backend id -> counters (per CPU) */
struct lb_stats {
    __u64 packets;  /* packets the tc/XDP programs sent to it */
    __u64 bytes;
    __u64 sockets;  /* connect()s and sendmsg()s the socket programs sent to it */
};

/* lb_names: service id -> name and the family of its VIP, 4 or 6 (a dual-stack service has two ids; read
 * back by netx, the datapath never looks at it) */
struct lb_name {
    char name[48];
    __u8 family;
    __u8 pad[3];
};

/* lb_sk_rev (socket programs): what a socket was translated to -> what it asked for; written by
 * connect/sendmsg, read by recvmsg (a datagram's source) and getpeername, removed by sock_release */
struct lb_sk_rev_key {
    __u64 cookie;         /* the socket's cookie */
    struct lb_addr addr;  /* the backend */
    __be16 port;
    __u16 pad;
    __u32 pad2;
};

struct lb_sk_rev_val {
    struct lb_addr vip;
    __be16 port;
    __u16 pad;
    __u32 svc;
};

/* lb_sk_client (socket programs): network namespace cookie -> the endpoint's addresses there (zero:
 * unknown), written by netx: connect() knows no source address yet, so with these a clientIP-affinity
 * service picks the backend the tc path picks for that client */
struct lb_sk_client {
    struct lb_addr v4;
    struct lb_addr v6;
};

BPF_TABLE_PINNED("hash", struct lb_svc_key, struct lb_svc_val, lb_svc, LB_MAX_SERVICES, PIN_DIR "/lb_svc");
BPF_TABLE_PINNED("hash", __u32, struct lb_be_val, lb_be, LB_MAX_BACKENDS, PIN_DIR "/lb_be");
BPF_F_TABLE("array", __u32, __u32, lb_maglev_inner, LB_MAGLEV_TEMPLATE, BPF_F_INNER_MAP);
BPF_TABLE_PINNED("hash_of_maps$lb_maglev_inner", __u32, int, lb_maglev, LB_MAX_SERVICES, PIN_DIR "/lb_maglev");
BPF_TABLE_PINNED("lru_hash", struct lb_ct_key, struct lb_ct_val, lb_ct, LB_MAX_FLOWS, PIN_DIR "/lb_ct");
BPF_TABLE_PINNED("percpu_array", __u32, struct lb_stats, lb_stats, LB_MAX_BACKENDS, PIN_DIR "/lb_stats");
BPF_TABLE_PINNED("hash", __u32, struct lb_name, lb_names, LB_MAX_SERVICES, PIN_DIR "/lb_names");
BPF_TABLE_PINNED("hash", __u32, struct lb_masq, lb_masq, 1024, PIN_DIR "/lb_masq");
BPF_TABLE_PINNED("lru_hash", struct lb_sk_rev_key, struct lb_sk_rev_val, lb_sk_rev, LB_MAX_SOCKETS,
                 PIN_DIR "/lb_sk_rev");
BPF_TABLE_PINNED("hash", __u64, struct lb_sk_client, lb_sk_client, LB_MAX_CLIENTS, PIN_DIR "/lb_sk_client");

#endif
