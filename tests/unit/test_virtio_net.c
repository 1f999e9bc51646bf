/* virtio-net over user-mode networking (libslirp) without a VM: the fake
 * driver sends an ARP request for the gateway and gets the reply, then a
 * host connection to a hostfwd port arrives in the guest as a TCP SYN. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "net/net.h"
#include "test_virtio_driver.h"
#include "virtio/devices.h"

#define RXQ 0
#define TXQ 1
#define NBUF 16
#define BUFLEN 2048

struct fixture {
    struct fake_driver f;
    uint64_t rxbuf[NBUF];
    int port;
};

static int setup(void **state)
{
    struct fixture *x = calloc(1, sizeof(*x));
    if (!x || fd_init_mem(&x->f) < 0)
        return -1;
    /* pick a free host port for the forward */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof(a);
    if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 ||
        getsockname(s, (struct sockaddr *)&a, &al) < 0)
        return -1;
    x->port = ntohs(a.sin_port);
    close(s);
    char fwd[64];
    snprintf(fwd, sizeof(fwd), "tcp:127.0.0.1:%d-:22", x->port);
    struct vm_net_config nc = {.kind = VM_NET_USER, .nhostfwd = 1, .hostfwd = {fwd}};
    vs_err err;
    struct virtio_dev *d = virtio_net_new(&x->f.mem, &nc, 0, 0, &err);
    if (!d) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    fd_attach(&x->f, d);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *x = *state;
    virtio_dev_destroy(x->f.dev);
    guest_mem_destroy(&x->f.mem);
    free(x);
    return 0;
}

static const uint8_t guest_mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

static struct fake_driver *ready(struct fixture *x)
{
    struct fake_driver *f = &x->f;
    uint64_t feat = FD_FEATURES_V1 | (1ULL << 5) | (1ULL << 15) | (1ULL << 16);
    assert_true(fd_negotiate(f, feat) & VIRTIO_STATUS_FEATURES_OK);
    fd_setup_queue(f, RXQ, 64);
    fd_setup_queue(f, TXQ, 64);
    for (unsigned i = 0; i < NBUF; i++) {
        x->rxbuf[i] = fd_alloc(f, BUFLEN);
        struct fd_buf b = {x->rxbuf[i], BUFLEN, true};
        fd_add(f, RXQ, &b, 1);
    }
    fd_driver_ok(f);
    fd_kick(f, RXQ);
    return f;
}

static void send_frame(struct fake_driver *f, const void *frame, size_t len)
{
    uint64_t h = fd_alloc(f, 12), p = fd_alloc(f, len);
    memset(fd_ptr(f, h), 0, 12);
    memcpy(fd_ptr(f, p), frame, len);
    struct fd_buf b[2] = {{h, 12, false}, {p, (uint32_t)len, false}};
    fd_add(f, TXQ, b, 2);
    fd_kick(f, TXQ);
}

/* Wait for a received frame with the given ethertype; returns its bytes
 * (after the 12-byte header). */
static const uint8_t *wait_frame(struct fixture *x, uint16_t ethertype, uint32_t *len_out)
{
    for (int tries = 0; tries < 20; tries++) {
        uint32_t id, len;
        if (!fd_wait_used(&x->f, RXQ, &id, &len))
            return NULL;
        /* the device used buffer `id` (descriptor index = buffer index) */
        const uint8_t *buf = fd_ptr(&x->f, x->rxbuf[id % NBUF]);
        uint16_t nb;
        memcpy(&nb, buf + 10, 2);
        assert_int_equal(nb, 1);
        const uint8_t *eth = buf + 12;
        if ((eth[12] << 8 | eth[13]) == ethertype) {
            *len_out = len - 12;
            return eth;
        }
    }
    return NULL;
}

static void arp(struct fake_driver *f)
{
    uint8_t frame[42] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    memcpy(frame + 6, guest_mac, 6);
    frame[12] = 0x08;
    frame[13] = 0x06;
    uint8_t arp[28] = {0, 1, 8, 0, 6, 4, 0, 1};
    memcpy(arp + 8, guest_mac, 6);
    uint8_t spa[4] = {10, 0, 2, 15}, tpa[4] = {10, 0, 2, 2};
    memcpy(arp + 14, spa, 4);
    memcpy(arp + 24, tpa, 4);
    memcpy(frame + 14, arp, 28);
    send_frame(f, frame, sizeof(frame));
}

static void mac_in_config(void **state)
{
    struct fixture *x = *state;
    ready(x);
    uint8_t mac[6];
    for (unsigned i = 0; i < 6; i++)
        mac[i] = (uint8_t)virtio_mmio_read(&x->f.mmio, 0x100 + i, 1);
    assert_memory_equal(mac, guest_mac, 6);
    assert_int_equal(virtio_mmio_read(&x->f.mmio, 0x106, 2), 1); /* link up */
}

static void gateway_answers_arp(void **state)
{
    struct fixture *x = *state;
    struct fake_driver *f = ready(x);
    arp(f);
    uint32_t len;
    const uint8_t *eth = wait_frame(x, 0x0806, &len);
    assert_non_null(eth);
    assert_true(len >= 42);
    assert_memory_equal(eth, guest_mac, 6); /* to us */
    assert_int_equal(eth[14 + 7], 2);       /* ARP reply */
    const uint8_t gw[4] = {10, 0, 2, 2};
    assert_memory_equal(eth + 14 + 14, gw, 4); /* sender IP is the gateway */
    uint32_t id, l;
    assert_true(fd_used(f, TXQ, &id, &l)); /* tx buffer returned */
}

static void hostfwd_connection_reaches_guest(void **state)
{
    struct fixture *x = *state;
    struct fake_driver *f = ready(x);
    arp(f); /* slirp learns the guest's MAC */
    uint32_t len;
    assert_non_null(wait_frame(x, 0x0806, &len));
    int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)x->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    connect(s, (struct sockaddr *)&a, sizeof(a));
    const uint8_t *eth = wait_frame(x, 0x0800, &len);
    assert_non_null(eth);
    const uint8_t *ip = eth + 14;
    assert_int_equal(ip[9], 6); /* TCP */
    const uint8_t guest_ip[4] = {10, 0, 2, 15};
    assert_memory_equal(ip + 16, guest_ip, 4);
    const uint8_t *tcp = ip + (ip[0] & 0xf) * 4;
    assert_int_equal(tcp[2] << 8 | tcp[3], 22);
    assert_true(tcp[13] & 0x02); /* SYN */
    close(s);
}

static void hostfwd_parser(void **state)
{
    bool udp;
    uint32_t ha, ga;
    int hp, gp;
    vs_err err;
    assert_int_equal(net_parse_hostfwd("tcp::2222-:22", &udp, &ha, &hp, &ga, &gp, &err), 0);
    assert_false(udp);
    assert_int_equal(hp, 2222);
    assert_int_equal(gp, 22);
    assert_int_equal(ntohl(ga), 0x0a00020f);
    assert_int_equal(
        net_parse_hostfwd("udp:127.0.0.1:53-10.0.2.16:5353", &udp, &ha, &hp, &ga, &gp, &err), 0);
    assert_true(udp);
    assert_int_equal(ntohl(ha), 0x7f000001);
    assert_int_equal(ntohl(ga), 0x0a000210);
    assert_int_equal(net_parse_hostfwd("sctp::1-:2", &udp, &ha, &hp, &ga, &gp, &err), -1);
    assert_int_equal(net_parse_hostfwd("tcp::99999-:22", &udp, &ha, &hp, &ga, &gp, &err), -1);
    assert_int_equal(net_parse_hostfwd("tcp:2222:22", &udp, &ha, &hp, &ga, &gp, &err), -1);
}

static void hostile_tx_chain_breaks_device(void **state)
{
    struct fixture *x = *state;
    struct fake_driver *f = ready(x);
    fd_set_desc(f, TXQ, 0, 0xdead0000000ULL, 64, 0, 0);
    fd_publish(f, TXQ, 0);
    fd_kick(f, TXQ);
    for (int i = 0; i < 5000 && !fd_needs_reset(f); i++)
        usleep(1000);
    assert_true(fd_needs_reset(f));
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(mac_in_config),
        T(gateway_answers_arp),
        T(hostfwd_connection_reaches_guest),
        T(hostfwd_parser),
        T(hostile_tx_chain_breaks_device),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
