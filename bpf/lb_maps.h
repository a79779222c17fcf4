/* netx L4 load balancer: map layout shared by bpf/lb.c and netplanx/features/services/lbmaps.py (ctypes
 * mirrors of these structs). The loader versions the map pins by a digest of this file: any change here
 * makes new, empty maps; a change to lb.c alone keeps them (connection tracking survives an upgrade).
 * Addresses and ports are in network byte order. PIN_DIR is set by the loader (-DPIN_DIR="...").
 */
#ifndef NETX_LB_MAPS_H
#define NETX_LB_MAPS_H

#define LB_MAX_SERVICES 65536
#define LB_MAX_BACKENDS 65536
#define LB_MAX_FLOWS 65536
#define LB_MAGLEV_TEMPLATE 251 /* inner arrays have their own size (BPF_F_INNER_MAP) */

#define LB_AFFINITY_CLIENT_IP 1

#define LB_DIR_FORWARD 0    /* client -> VIP: value is the backend */
#define LB_DIR_REPLY 1      /* backend -> client: value is the VIP (new source) */
#define LB_DIR_MASQ_REPLY 2 /* backend -> node (masqueraded flow): value is the VIP (new source) and the
                             * client (new destination, in nat_addr/nat_port) */
/* Masquerade source ports LB_MASQ_PORT_MIN-LB_MASQ_PORT_MAX: the loader passes them (-D, from MASQ_PORTS in
 * netplanx/features/services/lbmaps.py); the node reserves the same range (net.ipv4.ip_local_reserved_ports),
 * so that none of its own connections can share a 5-tuple with a masqueraded flow. */
#if !defined(LB_MASQ_PORT_MIN) || !defined(LB_MASQ_PORT_MAX)
#error "LB_MASQ_PORT_MIN and LB_MASQ_PORT_MAX are passed by the loader"
#endif
#define LB_MASQ_PORTS (LB_MASQ_PORT_MAX - LB_MASQ_PORT_MIN + 1)

/* lb_svc: (VIP, port, protocol) -> service */
struct lb_svc_key {
    __be32 vip;
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

/* lb_be: backend id -> backend */
struct lb_be_val {
    __be32 addr;
    __be16 port;
    __u16 weight;
    __u32 svc;      /* service id */
};

/* lb_ct: one entry per direction of a translated flow (LRU) */
struct lb_ct_key {
    __be32 src;
    __be32 dst;
    __be16 sport;
    __be16 dport;
    __u8 proto;
    __u8 dir;
    __u16 pad;
};

struct lb_ct_val {
    __be32 addr;      /* forward: backend address; replies: the VIP */
    __be16 port;      /* forward: backend port; replies: the service port */
    __be16 nat_port;  /* forward: masquerade source port (0: none); masquerade reply: client port */
    __u32 backend;    /* backend id */
    __be32 nat_addr;  /* forward: masquerade source address (0: none); masquerade reply: client address */
};

/* lb_masq: ifindex of a device whose incoming service traffic is masqueraded -> the source address */
struct lb_masq {
    __be32 addr;
    __u32 flags;
};

/* lb_stats: backend id -> counters (per CPU) */
struct lb_stats {
    __u64 packets;
    __u64 bytes;
};

/* lb_names: service id -> name (read back by netx; the datapath never looks at it) */
struct lb_name {
    char name[48];
};

BPF_TABLE_PINNED("hash", struct lb_svc_key, struct lb_svc_val, lb_svc, LB_MAX_SERVICES, PIN_DIR "/lb_svc");
BPF_TABLE_PINNED("hash", __u32, struct lb_be_val, lb_be, LB_MAX_BACKENDS, PIN_DIR "/lb_be");
BPF_F_TABLE("array", __u32, __u32, lb_maglev_inner, LB_MAGLEV_TEMPLATE, BPF_F_INNER_MAP);
BPF_TABLE_PINNED("hash_of_maps$lb_maglev_inner", __u32, int, lb_maglev, LB_MAX_SERVICES, PIN_DIR "/lb_maglev");
BPF_TABLE_PINNED("lru_hash", struct lb_ct_key, struct lb_ct_val, lb_ct, LB_MAX_FLOWS, PIN_DIR "/lb_ct");
BPF_TABLE_PINNED("percpu_array", __u32, struct lb_stats, lb_stats, LB_MAX_BACKENDS, PIN_DIR "/lb_stats");
BPF_TABLE_PINNED("hash", __u32, struct lb_name, lb_names, LB_MAX_SERVICES, PIN_DIR "/lb_names");
BPF_TABLE_PINNED("hash", __u32, struct lb_masq, lb_masq, 1024, PIN_DIR "/lb_masq");

#endif
