/* A CoreMark-style workload for bench/riscv-cpu: the same four kernels
 * CoreMark times (linked-list find/sort, integer matrix multiply with
 * constants and bit extraction, a byte-driven state machine, CRC-16 over
 * the results), written from the description rather than copied, so it is
 * built from source for both architectures. Prints a checksum. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

struct node {
    struct node *next;
    int16_t data, idx;
};

static uint16_t crc16(uint16_t crc, uint16_t v)
{
    for (int i = 0; i < 16; i++) {
        unsigned bit = ((crc ^ v) & 1);
        crc >>= 1;
        v >>= 1;
        if (bit)
            crc ^= 0xa001;
    }
    return crc;
}

static struct node *list_sort(struct node *head, int by_data)
{
    /* merge sort on a singly linked list */
    int insize = 1;
    for (;;) {
        struct node *p = head, *tail = NULL;
        head = NULL;
        int merges = 0;
        while (p) {
            merges++;
            struct node *q = p;
            int psize = 0, qsize = insize;
            for (int i = 0; i < insize && q; i++, psize++)
                q = q->next;
            while (psize > 0 || (qsize > 0 && q)) {
                struct node *e;
                if (psize == 0) {
                    e = q, q = q->next, qsize--;
                } else if (qsize == 0 || !q) {
                    e = p, p = p->next, psize--;
                } else if ((by_data ? p->data - q->data : p->idx - q->idx) <= 0) {
                    e = p, p = p->next, psize--;
                } else {
                    e = q, q = q->next, qsize--;
                }
                if (tail)
                    tail->next = e;
                else
                    head = e;
                tail = e;
            }
            p = q;
        }
        tail->next = NULL;
        if (merges <= 1)
            return head;
        insize *= 2;
    }
}

static uint16_t bench_list(struct node *nodes, int n, uint16_t seed)
{
    struct node *head = NULL;
    for (int i = n - 1; i >= 0; i--) {
        nodes[i].data = (int16_t)((i * 7919 + seed) & 0x7fff);
        nodes[i].idx = (int16_t)i;
        nodes[i].next = head;
        head = &nodes[i];
    }
    uint16_t crc = 0;
    for (int k = 0; k < 8; k++) {
        int16_t want = (int16_t)((k * 131 + seed) & 0x7fff);
        int found = -1, steps = 0;
        for (struct node *p = head; p; p = p->next, steps++)
            if (p->data == want) {
                found = p->idx;
                break;
            }
        crc = crc16(crc, (uint16_t)(found + steps));
        head = list_sort(head, 1);
        head = list_sort(head, 0);
    }
    for (struct node *p = head; p; p = p->next)
        crc = crc16(crc, (uint16_t)p->data);
    return crc;
}

static uint16_t bench_matrix(int32_t *a, int32_t *b, int32_t *c, int n, uint16_t seed)
{
    for (int i = 0; i < n * n; i++) {
        a[i] = (int32_t)((i + seed) % 97) - 48;
        b[i] = (int32_t)((i * 3 + seed) % 89) - 44;
    }
    uint16_t crc = 0;
    /* C = A * constant, then C = A * B, then bit extraction from C */
    for (int i = 0; i < n * n; i++)
        c[i] = a[i] * (int32_t)(seed | 1);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            int32_t acc = 0;
            for (int k = 0; k < n; k++)
                acc += a[i * n + k] * b[k * n + j];
            c[i * n + j] = acc;
        }
    for (int i = 0; i < n * n; i++)
        crc = crc16(crc, (uint16_t)((c[i] >> 2) & 0x0fff));
    return crc;
}

enum state { START, INT, FLOAT, EXP, SCI, INVALID };

static uint16_t bench_state(const char *s, int len)
{
    unsigned counts[6] = {0};
    enum state st = START;
    for (int i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == ',') {
            counts[st]++;
            st = START;
            continue;
        }
        switch (st) {
        case START:
            st = (ch >= '0' && ch <= '9') ? INT : (ch == '+' || ch == '-') ? INT : INVALID;
            break;
        case INT:
            st = (ch >= '0' && ch <= '9') ? INT : ch == '.' ? FLOAT : INVALID;
            break;
        case FLOAT:
            st = (ch >= '0' && ch <= '9') ? FLOAT : (ch == 'e' || ch == 'E') ? EXP : INVALID;
            break;
        case EXP:
            st = ((ch >= '0' && ch <= '9') || ch == '+' || ch == '-') ? SCI : INVALID;
            break;
        case SCI:
            st = (ch >= '0' && ch <= '9') ? SCI : INVALID;
            break;
        default:
            break;
        }
    }
    uint16_t crc = 0;
    for (int i = 0; i < 6; i++)
        crc = crc16(crc, (uint16_t)counts[i]);
    return crc;
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 10;
    enum { NODES = 400, N = 24, TEXT = 4000 };
    struct node *nodes = malloc(sizeof(*nodes) * NODES);
    int32_t *a = malloc(sizeof(int32_t) * N * N), *b = malloc(sizeof(int32_t) * N * N),
            *c = malloc(sizeof(int32_t) * N * N);
    char *text = malloc(TEXT);
    static const char *const words[] = {"5012",     "1234",     "-874",     "+122",
                                        "35.54400", ".1234500", "-110.700", "+0.64400",
                                        "5.500e+3", "-.123e-2", "-87e+832", "+0.6e-12",
                                        "T0.3e-1F", "-T.T++Tq", "1T3.4e4z", "34.0e-T^"};
    int pos = 0;
    for (unsigned i = 0; pos < TEXT - 12; i++) {
        const char *w = words[(i * 7) % 16];
        while (*w)
            text[pos++] = *w++;
        text[pos++] = ',';
    }
    uint16_t crc = 0;
    for (int it = 0; it < iters; it++) {
        uint16_t seed = (uint16_t)(it * 17 + 3);
        crc = crc16(crc, bench_list(nodes, NODES, seed));
        crc = crc16(crc, bench_matrix(a, b, c, N, seed));
        crc = crc16(crc, bench_state(text, pos));
    }
    printf("coremark-style iterations %d crc %04x\n", iters, crc);
    return 0;
}
