/* cmd/opt.c: the option parser of every verb, vessel-runc's included (podman
 * and containerd depend on its runc-compatible forms). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "cmd/opt.h"
#include "util/cleanup.h"

struct opts {
    const char *bundle, *pidfile;
    bool detach, tty, force;
    int preserve;
    struct cmd_strlist env;
};

static int parse(struct opts *o, char **pos, int maxpos, bool rest, int *npos, vs_err *err,
                 int argc, char **argv)
{
    memset(o, 0, sizeof(*o));
    const struct cmd_opt table[] = {
        {"bundle", 'b', CMD_OPT_STR, &o->bundle},  {"pid-file", 0, CMD_OPT_STR, &o->pidfile},
        {"detach", 'd', CMD_OPT_FLAG, &o->detach}, {"tty", 't', CMD_OPT_FLAG, &o->tty},
        {"force", 'f', CMD_OPT_FLAG, &o->force},   {"preserve-fds", 0, CMD_OPT_INT, &o->preserve},
        {"env", 'e', CMD_OPT_LIST, &o->env},
    };
    struct cmd_optparse p = {.verb = "exec",
                             .opts = table,
                             .nopts = ARRAY_SIZE(table),
                             .pos = pos,
                             .maxpos = maxpos,
                             .rest_after_first = rest};
    int r = cmd_opt_parse(&p, argc, argv, err);
    *npos = p.npos;
    return r;
}

static void runc_forms(void **state)
{
    struct opts o;
    char *pos[8];
    int n;
    vs_err err;
    char *a[] = {"--bundle", "/b",        "--pid-file=/p",  "-td", "-e",
                 "A=1",      "--env=B=2", "--preserve-fds", "2",   "id"};
    assert_int_equal(parse(&o, pos, 1, false, &n, &err, ARRAY_SIZE(a), a), 0);
    assert_string_equal(o.bundle, "/b");
    assert_string_equal(o.pidfile, "/p");
    assert_true(o.tty && o.detach && !o.force);
    assert_int_equal(o.env.n, 2);
    assert_string_equal(o.env.v[1], "B=2");
    assert_int_equal(o.preserve, 2);
    assert_int_equal(n, 1);
    assert_string_equal(pos[0], "id");
    /* options after the id, flags spelled --flag=false, -b VALUE */
    char *b[] = {"id", "--detach=false", "-f", "-b", "x"};
    assert_int_equal(parse(&o, pos, 1, false, &n, &err, ARRAY_SIZE(b), b), 0);
    assert_false(o.detach);
    assert_true(o.force);
    assert_string_equal(o.bundle, "x");
}

static void rest_after_first(void **state)
{
    struct opts o;
    char *pos[8];
    int n;
    vs_err err;
    /* exec: everything after the id is the command, dashes included */
    char *a[] = {"-t", "id", "ls", "-l", "--tty"};
    assert_int_equal(parse(&o, pos, 8, true, &n, &err, ARRAY_SIZE(a), a), 0);
    assert_true(o.tty);
    assert_int_equal(n, 4);
    assert_string_equal(pos[2], "-l");
    assert_string_equal(pos[3], "--tty");
    char *b[] = {"--", "-x"};
    assert_int_equal(parse(&o, pos, 8, false, &n, &err, ARRAY_SIZE(b), b), 0);
    assert_int_equal(n, 1);
    assert_string_equal(pos[0], "-x");
}

static void errors(void **state)
{
    struct opts o;
    char *pos[2];
    int n;
    vs_err err;
    char *a[] = {"--frobnicate"};
    assert_int_equal(parse(&o, pos, 1, false, &n, &err, 1, a), -1);
    assert_string_equal(err.msg, "exec: unknown option '--frobnicate'");
    char *b[] = {"--bundle"};
    assert_int_equal(parse(&o, pos, 1, false, &n, &err, 1, b), -1);
    assert_string_equal(err.msg, "exec: --bundle needs a value");
    char *c[] = {"--tty=yes"};
    assert_int_equal(parse(&o, pos, 1, false, &n, &err, 1, c), -1);
    assert_non_null(strstr(err.msg, "takes no value"));
    char *d[] = {"--preserve-fds", "-1"};
    assert_int_equal(parse(&o, pos, 1, false, &n, &err, 2, d), -1);
    assert_non_null(strstr(err.msg, "not a valid number"));
    char *e[] = {"id", "extra"};
    assert_int_equal(parse(&o, pos, 1, false, &n, &err, 2, e), -1);
    assert_non_null(strstr(err.msg, "unexpected argument 'extra'"));
    char *f[] = {"-tx"}; /* x is no flag: the whole word is unknown */
    assert_int_equal(parse(&o, pos, 1, false, &n, &err, 1, f), -1);
    char *h[] = {"id", "--help"};
    assert_int_equal(parse(&o, pos, 1, false, &n, &err, 2, h), CMD_OPT_HELP);
}

static void single_dash_long(void **state)
{
    const char *root = NULL;
    bool debug = false;
    const struct cmd_opt table[] = {{"root", 0, CMD_OPT_STR, &root},
                                    {"debug", 0, CMD_OPT_FLAG, &debug}};
    char *pos[4];
    struct cmd_optparse p = {.verb = "vessel-runc",
                             .opts = table,
                             .nopts = 2,
                             .pos = pos,
                             .maxpos = 4,
                             .rest_after_first = true,
                             .single_dash_long = true};
    char *a[] = {"-root", "/r", "--debug", "state", "--root", "x"};
    vs_err err;
    assert_int_equal(cmd_opt_parse(&p, ARRAY_SIZE(a), a, &err), 0);
    assert_string_equal(root, "/r");
    assert_true(debug);
    assert_int_equal(p.npos, 3); /* the verb and its own arguments */
    assert_string_equal(pos[0], "state");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(runc_forms),
        cmocka_unit_test(rest_after_first),
        cmocka_unit_test(errors),
        cmocka_unit_test(single_dash_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
