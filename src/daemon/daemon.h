/* vesseld: the management daemon. It keeps every instance (KVM VM, emulated
 * riscv64 VM, container) and image of a host in its store and serves them
 * over REST/JSON on a unix socket (docs/daemon-api.md, docs/daemon-api.yaml).
 *
 * It supervises, it never hosts: each VM is its own `vessel vm run` process
 * (found again through its control socket), each container is started with
 * the OCI library in a short-lived child and found again through the
 * runtime's state directory. Killing the daemon stops no instance. */
#ifndef VESSEL_DAEMON_DAEMON_H
#define VESSEL_DAEMON_DAEMON_H

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"
#include "util/err.h"

struct daemon_config {
    const char *socket_path; /* default /run/vessel/vessel.sock */
    const char *state_dir;   /* default /var/lib/vessel */
    const char *vessel_bin;  /* the `vessel` executable that runs VMs */
    const char *https_addr;  /* "ADDR:PORT" for HTTPS with client certificates, or NULL */
    const char *network;     /* "BRIDGE:ADDR/PREFIX", "none", or NULL for the default */
    /* how its VM processes are confined (docs/security.md): landlock to
     * their own files always; a jail of their own unless no_vm_jail
     * (--vm-jail=off, for debugging) */
    bool no_vm_jail;
};

#define DAEMON_MAX_BUSY 256

/* The managed network (network.c); addresses in host order. */
struct daemon_network {
    bool enabled;
    char bridge[16];
    uint32_t gateway, first, last; /* the instances' range is first..last */
    int prefix;
};

struct daemon {
    struct daemon_config cfg;
    char *state_dir, *socket_path, *vessel_bin;
    char *oci_root; /* state_dir/containers: the OCI runtime's --root */
    struct store *store;
    /* Instances with a request in progress: a second request on the same
     * one gets 409 instead of racing the first. */
    pthread_mutex_t lock;
    char *busy[DAEMON_MAX_BUSY];
    struct http_server *http, *https;
    struct daemon_network net;
    int lock_fd; /* flock on STATE/vesseld.lock: one daemon per state dir */
    pthread_mutex_t
        alloc_lock; /* addresses, clone indexes, image use: taken and recorded at once */
    int last_clone_index;
    int stop_fd;             /* eventfd: SIGTERM/SIGINT */
    struct cluster *cluster; /* NULL: one host, SQLite (cluster.c) */
};

/* Open the store, reconcile it with what runs on the host (instances that
 * outlived a previous daemon, operations it left half-done), and listen. */
int daemon_start(struct daemon *d, const struct daemon_config *cfg, vs_err *err);
/* Serve until SIGTERM or SIGINT; instances keep running. */
int daemon_run(struct daemon *d, vs_err *err);
void daemon_free(struct daemon *d);

/* Mark name busy (false and err EBUSY if it already is). */
bool daemon_claim(struct daemon *d, const char *name, vs_err *err);
void daemon_release(struct daemon *d, const char *name);

/* Instances (instance.c). Every call returns 0 or -1 with err; err.code
 * says which HTTP status fits (ENOENT 404, EEXIST/EBUSY 409, EINVAL 400). */
json_t *instance_list(struct daemon *d, vs_err *err);
json_t *instance_info(struct daemon *d, const char *name, vs_err *err);
/* req: {"name","image","type"?: "vm"|"container","arch"?,"config"?:{k:v},
 * "start"?: bool (default true)} */
json_t *instance_create(struct daemon *d, json_t *req, vs_err *err);
/* action: start|stop|restart|pause|resume; timeout in seconds for stop. */
int instance_change_state(struct daemon *d, const char *name, const char *action, bool force,
                          int timeout, vs_err *err);
int instance_delete(struct daemon *d, const char *name, bool force, vs_err *err);
/* Set (or with null, unset) config keys; what a running container can take
 * is applied at once ("applied": {key: "live"|"next start"}). */
json_t *instance_config_set(struct daemon *d, const char *name, json_t *changes, vs_err *err);
/* Steps of an instance's life cycle for callers that hold its claim
 * (snapshots, copies); the record is updated in the store. */
int instance_start_claimed(struct daemon *d, json_t *inst, vs_err *err);
int instance_stop_claimed(struct daemon *d, json_t *inst, bool force, int timeout, vs_err *err);
int instance_pause_claimed(struct daemon *d, json_t *inst, bool pause, vs_err *err);
/* Record the disk a running VM writes to (from its GET /vm). */
void instance_note_disk(json_t *inst, json_t *vm_info);
/* The state the host shows now (the record is brought in line). */
const char *instance_refresh_state(struct daemon *d, json_t *inst);
/* STATE/instances/NAME[/file] */
void instance_path(struct daemon *d, const char *name, const char *file, char *out, size_t n);

/* Snapshots, copies and publishing (snapshot.c). The operations' req
 * carries the instance's name as "instance"; the handler has claimed it
 * and the operation releases it. */
json_t *snapshot_create_op(struct daemon *d, json_t *req, const char *op_id, vs_err *err);
int snapshot_restore(struct daemon *d, const char *name, const char *snap, vs_err *err);
int snapshot_delete(struct daemon *d, const char *name, const char *snap, vs_err *err);
json_t *instance_copy_op(struct daemon *d, json_t *req, const char *op_id, vs_err *err);
json_t *instance_publish_op(struct daemon *d, json_t *req, const char *op_id, vs_err *err);
/* Archive the tree at dir into a tar file at path (a container's changes,
 * for publish and for moves between hosts). */
int snapshot_tar_tree(const char *dir, const char *path, vs_err *err);
/* A clone index no other instance has (a VM clone's MAC and vsock CID). */
int instance_next_clone_index(struct daemon *d);
/* exec (exec.c): req {"command": [..], "record_output"?: bool}. Returns
 * {"socket": PATH} where the client hands over its stdin/stdout/stderr
 * (SCM_RIGHTS, one byte 't' for a terminal or '-') and reads the exit
 * status (int32), or with record_output {"exit_code","stdout","stderr"}. */
json_t *instance_exec(struct daemon *d, const char *name, json_t *req, vs_err *err);
/* A one-shot unix socket for the local caller (caller_uid/caller_gid in req)
 * next to the daemon's socket: the listener, its path in path. */
int daemon_oneshot_listen(struct daemon *d, json_t *req, const char *kind, char *path, size_t n,
                          vs_err *err);
/* console: a one-shot socket on which the caller receives a connection to
 * the instance's console (SCM_RIGHTS), {"socket": PATH}. */
json_t *instance_console_attach(struct daemon *d, const char *name, json_t *req, vs_err *err);
/* In a child about to create a container with a terminal: fork the process
 * that keeps the terminal's master (its output to log, a client attached on
 * attach_sock), receiving it on the listening oci_listener. */
int console_keeper_start(int oci_listener, const char *log, const char *attach_sock, vs_err *err);
/* A VM's vsock identity (vm_vsock.c): the bridge socket uds (<instance
 * dir>/vsock.sock; -1 when that path is too long for a socket) and a guest
 * CID (>= 3) no other instance holds, kept in config "volatile.vsock_cid"
 * (stored at once when it changes). exec reaches the guest agent there. */
int instance_vsock_uds(struct daemon *d, const char *name, char *uds, size_t n);
/* A VM arriving by live migration (cluster_move_vm.c), on the target: its
 * directory and a `vessel vm run --incoming` listening on addr; returns
 * {"uri", "pid", "pid_start"}. drop: that process and directory go again
 * (the move failed), unless the instance is this host's by now. */
json_t *instance_incoming(struct daemon *d, const char *name, const char *addr, vs_err *err);
int instance_incoming_drop(struct daemon *d, const char *name, pid_t pid, unsigned long long start,
                           vs_err *err);
int instance_vsock(struct daemon *d, json_t *inst, char *uds, size_t n, uint32_t *cid, vs_err *err);
/* Was the VM in the snapshot at dir started with vsock (so its clone can be
 * given a CID of its own)? */
bool instance_snapshot_has_vsock(const char *dir);
/* Mark a stateful snapshot dir as taken of a VM with virtio-vsock. */
void instance_snapshot_mark_vsock(const char *dir);
/* ... and one whose first NIC was a tap on the managed bridge */
bool instance_snapshot_has_net(const char *dir);
void instance_snapshot_mark_net(const char *dir);
/* Refresh every instance's state from the host (after a daemon restart). */
void instance_reconcile(struct daemon *d);
/* Is name a valid instance name (letters, digits, '-', 1..63, starting with
 * a letter, like a hostname label)? */
int instance_validate_name(const char *name, vs_err *err);

/* Images (image.c). req: {"type":"container","source": TARBALL,"alias"?}
 * or {"type":"vm","arch"?, "kernel","initrd"?, "alias"?} or
 * {"type":"vm","source":"default","arch"?} (the guest built by
 * guest/build-<arch>.sh). Runs as operation op_id (progress in bytes). */
json_t *image_import(struct daemon *d, json_t *req, const char *op_id, vs_err *err);
json_t *image_list(struct daemon *d, vs_err *err);
/* What can be told of an import request before it starts (type, alias,
 * the source files): 400/404/409 at once instead of a failed operation. */
int image_import_check(struct daemon *d, json_t *req, vs_err *err);
/* Make the prepared directory dir (under STATE/images) the image fp. */
json_t *image_adopt(struct daemon *d, const char *dir, const char *type, const char *arch,
                    const char *alias, json_t *props, const char *fp, long long size, vs_err *err);
int image_delete(struct daemon *d, const char *ref, vs_err *err);
/* PATCH /1.0/images/{ref} {"alias": NAME|null}: give the image that alias
 * (unique among images) or take its alias away. */
json_t *image_set_alias(struct daemon *d, const char *ref, json_t *req, vs_err *err);
/* Images left "importing" by a daemon that died are removed. */
void image_reconcile(struct daemon *d);

/* Operations (operation.c): long work in a thread of its own, recorded in
 * the store with progress; an operation cut off by a daemon restart is
 * marked failed and its partial result removed (image_reconcile). */
typedef json_t *(*operation_fn)(struct daemon *d, json_t *req, const char *op_id, vs_err *err);
json_t *operation_start(struct daemon *d, const char *kind, const char *target, operation_fn fn,
                        json_t *req, vs_err *err);
void operation_progress(struct daemon *d, const char *op_id, json_t *progress);
/* Ask a running operation to stop; it ends "cancelled" with its partial
 * work undone. Operations poll operation_cancelled at their steps. */
int operation_cancel(struct daemon *d, const char *id, vs_err *err);
bool operation_cancelled(const char *op_id);
/* Wait up to timeout_s for the operation to end; its record. */
json_t *operation_wait(struct daemon *d, const char *id, int timeout_s, vs_err *err);
void operation_reconcile(struct daemon *d);

/* Split a container command line into words (out: a JSON array) as a
 * shell would for plain words, '...' and "..." quoting and backslash
 * escapes, without expansions. */
int daemon_split_command(const char *cmd, json_t *out, vs_err *err);

/* Events (events.c): type instance|image|operation|snapshot, an action
 * ("started", "deleted", ...), the target's name and optional metadata
 * (taken). Readers follow them by sequence number. */
void daemon_event(struct daemon *d, const char *type, const char *action, const char *target,
                  json_t *metadata);
uint64_t daemon_events_next(void);
/* The event at *seq as a JSON line (malloc'd), waiting up to timeout_ms;
 * NULL on timeout. Advances *seq. */
char *daemon_events_wait(uint64_t *seq, int timeout_ms);

/* TLS (trust.c): the server's identity (made on first use) and the
 * enrolled client certificates, by SHA-256 fingerprint of their DER. */
int trust_server_identity(struct daemon *d, char **key_pem, char **cert_pem, vs_err *err);
int trust_fingerprint_der(const void *der, size_t len, char out[65]);
bool trust_is_enrolled(struct daemon *d, const char *fingerprint);
json_t *trust_add(struct daemon *d, const char *pem, const char *name, vs_err *err);
json_t *trust_list(struct daemon *d, vs_err *err);
int trust_remove(struct daemon *d, const char *fingerprint, vs_err *err);

/* The managed network (network.c): bridge, NAT, dnsmasq; an address and
 * MAC per instance (volatile.ipv4, volatile.hwaddr); a container's veth in
 * its namespace, a VM's tap on the bridge. All no-ops when disabled. */
int network_parse(const char *spec, struct daemon_network *n, vs_err *err);
int network_start(struct daemon *d, vs_err *err);
int network_assign(struct daemon *d, json_t *inst, vs_err *err);
int network_container_attach(struct daemon *d, json_t *inst, int pid, vs_err *err);
int network_vm_tap(struct daemon *d, json_t *inst, char tap[16], vs_err *err);
void network_release(struct daemon *d, const char *name);
void network_gateway(struct daemon *d, char *out, size_t n);

/* Clusters (cluster.c): with STATE/cluster.json the store is etcd's and
 * this host one member. cluster_open (before the reconciliations) opens
 * that store into d->store; cluster_start keeps this host's lease alive. */
int cluster_open(struct daemon *d, vs_err *err);
void cluster_start(struct daemon *d);
/* What "location" this host's instances get: its name, or "local". */
const char *daemon_location(struct daemon *d);
/* Does inst live on this host (always, on a single host)? */
bool daemon_instance_local(struct daemon *d, json_t *inst);
bool cluster_host_online(struct daemon *d, const char *host);
/* Another host's instance as listed: "unknown" while its host is offline. */
void cluster_annotate(struct daemon *d, json_t *inst);
/* 0 when name is this host's instance (or none); EREMOTE with its host in
 * host[n]. */
int cluster_check_local(struct daemon *d, const char *name, char *host, size_t n, vs_err *err);
/* Forwarding to another host's daemon (cluster_forward.c): the daemons'
 * HTTPS API on ADDRESS:CLUSTER_API_PORT of hosts given an address, each
 * member's certificate in its hosts/ record. */
#define CLUSTER_API_PORT 8443
json_t *cluster_host_record(struct daemon *d, const char *host, vs_err *err);
bool cluster_is_self(struct daemon *d, const char *host);
/* Where "target": "auto" puts an instance of image: among the online hosts
 * that have the image, the one with the fewest instances per CPU, then the
 * most available memory (docs/cluster.md). */
int cluster_place(struct daemon *d, const char *image, const char *exclude, char *host, size_t n,
                  vs_err *err);
/* Is fingerprint a member's certificate (its daemon may call this one)? */
bool cluster_trusts(struct daemon *d, const char *fingerprint);
int cluster_cert_fingerprint(const char *pem, char out[65]);
/* This host's name in the cluster, or NULL. */
const char *cluster_host_name(struct daemon *d);
/* The cluster's etcd key prefix ("" on a single host). */
const char *cluster_prefix(struct daemon *d);
/* Has host a ready image that ref names (alias, fingerprint or prefix)? */
bool cluster_host_has_image(struct daemon *d, const char *host, const char *ref);
/* Moving a container (cluster_move.c): on its owner, req {"target": HOST};
 * on the target, the tar of its overlay's upper directory. */
json_t *cluster_move(struct daemon *d, const char *name, json_t *req, vs_err *err);
/* An instance's record in etcd with its revision, and a write of it that
 * holds only if the revision is still that (EAGAIN otherwise). */
json_t *cluster_record_at(struct daemon *d, const char *name, long long *rev, vs_err *err);
int cluster_record_swap(struct daemon *d, const char *name, json_t *rec, long long rev,
                        vs_err *err);
/* The record of an instance that starts afresh on target: stopped there,
 * nothing of this host's (pid, address, MAC) kept. */
void cluster_record_relocate(json_t *rec, const char *target);
/* A running VM, live (cluster_move_vm.c), for cluster_move (claimed). */
json_t *cluster_move_vm(struct daemon *d, const char *name, const char *target, json_t *inst,
                        vs_err *err);
int cluster_receive(struct daemon *d, const char *name, const char *tar, size_t len, vs_err *err);
/* Images copied to the host that needs them (cluster_move.c): unless
 * target has the image ref names, this host's copy is sent there (its
 * directory as a tar). fp: the image's fingerprint when this host has it. */
int cluster_ensure_image(struct daemon *d, const char *target, const char *ref, char fp[65],
                         vs_err *err);
int cluster_receive_image(struct daemon *d, const char *fp, const char *meta_hex, const char *tar,
                          size_t len, vs_err *err);
/* High availability (cluster_ha.c), every second while this host holds
 * its lease: instances another host took over are stopped here, and the
 * first online host restarts containers with cluster.ha=true whose host
 * went offline on a healthy host. */
void cluster_ha_tick(struct daemon *d);
/* This host's containers moved elsewhere (placed as "auto", other hosts
 * only); VMs stay. {"moved": {name: host}, "stayed": {name: reason}} */
json_t *cluster_evacuate(struct daemon *d, vs_err *err);
/* method url (with its query) and body to host's daemon: its status and
 * body (malloc'd). */
int cluster_forward(struct daemon *d, const char *host, const char *method, const char *url,
                    const char *body, size_t body_len, unsigned *status, char **reply, vs_err *err);
/* 0, or EHOSTUNREACH while this host cannot reach an etcd quorum (its
 * lease's keepalive fails): a change to an instance is refused up front. */
int cluster_check_writable(struct daemon *d, vs_err *err);
/* GET /1.0/cluster; POST /1.0/cluster {"action":"init"|"join","name"?,
 * "etcd"?,"address"?}: this host's records go into the cluster. */
json_t *cluster_info(struct daemon *d, vs_err *err);
json_t *cluster_form(struct daemon *d, json_t *req, vs_err *err);
/* The members with status online|offline and their instance counts. */
json_t *cluster_members(struct daemon *d, vs_err *err);
int cluster_remove(struct daemon *d, const char *host, bool force, vs_err *err);

/* The hex SHA-256 of a file's contents. */
int daemon_sha256_file(const char *path, char out[65], vs_err *err);

/* Remove what lies in STATE/sub that no record names (known says which
 * names have one): what a crash between a record and its files left. */
void daemon_sweep_dir(struct daemon *d, const char *sub,
                      bool (*known)(struct daemon *d, const char *name));

/* Remove a directory tree (best effort; for instance and image dirs). */
void daemon_rm_rf(const char *path);
long long daemon_now_ms(void);

#endif
