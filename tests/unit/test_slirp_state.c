/* User networking across a snapshot (src/net/slirp_state.c): which
 * connections a snapshot records, the probes that reset them in a restored
 * guest, and the section's validation. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "net/net.h"
#include "net/slirp_state.h"
#include "state/state.h"

static struct in_addr ip(const char *s)
{
    struct in_addr a;
    assert_int_equal(inet_pton(AF_INET, s, &a), 1);
    return a;
}

static const char info[] =
    "  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\n"
    "  TCP[HOST_FORWARD]   9       127.0.0.1  2222       10.0.2.15    22     0     0\n"
    "  TCP[ESTABLISHED]   12       10.0.2.15 40000        10.0.2.2  8080     0     0\n"
    "  TCP[SYN_SENT]      13       10.0.2.15 40002   93.184.216.34   443     0     0\n"
    "  TCP[ESTABLISHED]   -1       127.0.0.1  2222       10.0.2.15    22     0     0\n"
    "  UDP[34 sec]        14       10.0.2.15 50000        10.0.2.3    53     0     0\n";
static const char neigh[] = "  Table  MacAddr            IP Address\n"
                            "    ARP  52:54:00:12:34:56  10.0.2.15\n";

static void test_parse_outgoing_connections(void **state)
{
    struct slirp_conn c[8];
    unsigned n = slirp_state_parse_conns(info, neigh, ip("10.0.2.0"), ip("255.255.255.0"),
                                         ip("10.0.2.2"), c, 8);
    /* the listener, the UDP socket and the incoming connection whose host
     * socket is gone (fd -1: no peer) are left out */
    assert_int_equal(n, 2);
    assert_int_equal(c[0].guest_addr, ip("10.0.2.15").s_addr);
    assert_int_equal(ntohs(c[0].guest_port), 40000);
    assert_int_equal(c[0].peer_addr, ip("10.0.2.2").s_addr);
    assert_int_equal(ntohs(c[0].peer_port), 8080);
    static const uint8_t mac[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    assert_memory_equal(c[0].guest_mac, mac, 6);
    assert_int_equal(c[1].peer_addr, ip("93.184.216.34").s_addr);
    assert_int_equal(ntohs(c[1].peer_port), 443);
    /* a guest slirp never sent a frame to (no ARP entry): nothing to reset */
    assert_int_equal(slirp_state_parse_conns(info, "", ip("10.0.2.0"), ip("255.255.255.0"),
                                             ip("10.0.2.2"), c, 8),
                     0);
    assert_int_equal(slirp_state_parse_conns(info, neigh, ip("10.0.2.0"), ip("255.255.255.0"),
                                             ip("10.0.2.2"), c, 1),
                     1);
}

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += (uint32_t)(p[i] << 8 | p[i + 1]);
    return sum;
}

static uint16_t fold(uint32_t sum)
{
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)sum;
}

static void test_probe_frame_is_a_valid_ack(void **state)
{
    struct slirp_conn c = {.guest_addr = ip("10.0.2.15").s_addr,
                           .peer_addr = ip("10.0.2.2").s_addr,
                           .guest_port = htons(40000),
                           .peer_port = htons(8080),
                           .guest_mac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56}};
    uint8_t f[64];
    assert_int_equal(slirp_state_probe_frame(&c, ip("10.0.2.2"), 0x12345678, f, 10), 0);
    size_t n = slirp_state_probe_frame(&c, ip("10.0.2.2"), 0x12345678, f, sizeof(f));
    assert_int_equal(n, 54);
    assert_memory_equal(f, c.guest_mac, 6);
    static const uint8_t gw_mac[6] = {0x52, 0x55, 10, 0, 2, 2};
    assert_memory_equal(f + 6, gw_mac, 6);
    assert_int_equal(f[12] << 8 | f[13], 0x0800);
    const uint8_t *iph = f + 14, *tcp = f + 34;
    assert_int_equal(iph[0], 0x45);
    assert_int_equal(iph[9], 6);
    assert_int_equal(fold(sum16(iph, 20, 0)), 0xffff); /* header checksum holds */
    assert_memory_equal(iph + 12, &c.peer_addr, 4);
    assert_memory_equal(iph + 16, &c.guest_addr, 4);
    assert_memory_equal(tcp, &c.peer_port, 2);
    assert_memory_equal(tcp + 2, &c.guest_port, 2);
    assert_int_equal((uint32_t)tcp[4] << 24 | tcp[5] << 16 | tcp[6] << 8 | tcp[7], 0x12345678);
    assert_int_equal(tcp[13], 0x10); /* ACK only: no SYN, FIN, RST, no data */
    uint8_t pseudo[12] = {0};
    memcpy(pseudo, iph + 12, 8);
    pseudo[9] = 6;
    pseudo[11] = 20;
    assert_int_equal(fold(sum16(tcp, 20, sum16(pseudo, 12, 0))), 0xffff);
}

static void section(struct state_writer *w, uint32_t version, uint32_t nconn, uint32_t port)
{
    state_begin(w, "net.slirp", 0, version);
    state_put_u32(w, 4);
    state_put_u64(w, 1);
    state_put(w, "\0", 1);
    state_put_u32(w, nconn);
    for (uint32_t i = 0; i < nconn && i < 4; i++) {
        state_put_u32(w, 0x0a00020f);
        state_put_u32(w, 0x0a000202);
        state_put_u32(w, port);
        state_put_u32(w, 8080);
        state_put(w, "\x52\x54\0\x12\x34\x56\0\0", 8);
    }
    state_end(w);
}

static int prepare(uint32_t version, uint32_t nconn, uint32_t port, vs_err *err)
{
    struct state_writer w;
    state_writer_init(&w);
    section(&w, version, nconn, port);
    struct state_reader r;
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, err), 0);
    struct slirp_state_saved saved;
    int rc = slirp_state_read_section(&r, 0, &saved, err);
    if (rc == 0)
        assert_true(saved.present);
    slirp_state_saved_free(&saved);
    state_writer_free(&w);
    return rc;
}

static void test_restore_checks_the_section(void **state)
{
    vs_err err = {0};
    assert_int_equal(prepare(1, 1, 40000, &err), 0);
    assert_int_equal(prepare(2, 1, 40000, &err), -1);
    assert_non_null(strstr(err.msg, "unsupported state version 2"));
    assert_int_equal(prepare(1, 1, 70000, &err), -1);
    assert_non_null(strstr(err.msg, "bad port"));
    assert_int_equal(prepare(1, 1000000, 40000, &err), -1);
    assert_non_null(strstr(err.msg, "too many"));
    assert_int_equal(prepare(1, 5, 40000, &err), -1); /* says 5, holds 4: truncated */
}

/* The state belongs to each backend: two VMs' user networks in one
 * process are each their VM's instance 0 (no process-wide numbering), and a
 * backend loads what another saved. */
static void test_state_is_per_backend(void **state)
{
    struct vm_net_config nc = {.kind = VM_NET_USER};
    struct net_backend *a, *b;
    vs_err err;
    assert_int_equal(net_slirp_open(&nc, 0, &a, &err), 0);
    assert_int_equal(net_slirp_open(&nc, 0, &b, &err), 0);
    struct state_writer wa, wb;
    state_writer_init(&wa);
    state_writer_init(&wb);
    assert_int_equal(a->ops->save(a, &wa, &err), 0);
    assert_int_equal(b->ops->save(b, &wb, &err), 0);
    struct state_reader r;
    uint32_t version;
    assert_int_equal(state_reader_init(&r, wb.buf.data, wb.buf.len, &err), 0);
    assert_int_equal(state_find(&r, "net.slirp", 0, &version, &err), 1);
    assert_int_equal(state_find(&r, "net.slirp", 1, &version, &err), -1);
    assert_int_equal(state_reader_init(&r, wa.buf.data, wa.buf.len, &err), 0);
    assert_int_equal(b->ops->load(b, &r, &err), 0);
    /* a snapshot without the section (older, or no user networking then) */
    struct state_writer empty;
    state_writer_init(&empty);
    state_begin(&empty, "other", 0, 1);
    state_end(&empty);
    assert_int_equal(state_reader_init(&r, empty.buf.data, empty.buf.len, &err), 0);
    assert_int_equal(b->ops->load(b, &r, &err), 0);
    /* a malformed one fails the backend's load */
    struct state_writer bad;
    state_writer_init(&bad);
    section(&bad, 2, 0, 1);
    assert_int_equal(state_reader_init(&r, bad.buf.data, bad.buf.len, &err), 0);
    assert_int_equal(b->ops->load(b, &r, &err), -1);
    assert_non_null(strstr(err.msg, "unsupported state version 2"));
    state_writer_free(&wa);
    state_writer_free(&wb);
    state_writer_free(&empty);
    state_writer_free(&bad);
    a->ops->close(a);
    b->ops->close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_outgoing_connections),
        cmocka_unit_test(test_probe_frame_is_a_valid_ack),
        cmocka_unit_test(test_restore_checks_the_section),
        cmocka_unit_test(test_state_is_per_backend),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
