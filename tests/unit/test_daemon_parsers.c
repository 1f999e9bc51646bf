/* The daemon's own parsers: container command lines split like a shell,
 * instance names, and the URL router's path parameters. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/daemon.h"
#include "daemon/http.h"

static void check_split(const char *cmd, const char *const *want, size_t n)
{
    json_t *words = json_array();
    vs_err err = {0};
    assert_int_equal(daemon_split_command(cmd, words, &err), 0);
    assert_int_equal(json_array_size(words), n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(json_string_value(json_array_get(words, i)), want[i]);
    json_decref(words);
}

static void commands_split_like_a_shell(void **state)
{
    check_split("sleep 100", (const char *const[]){"sleep", "100"}, 2);
    check_split("  sh  -c 'echo a b; exit 3' ",
                (const char *const[]){"sh", "-c", "echo a b; exit 3"}, 3);
    check_split("echo \"a \\\"b\\\"\" c\\ d", (const char *const[]){"echo", "a \"b\"", "c d"}, 3);
    check_split("'it'\\''s'", (const char *const[]){"it's"}, 1);
    check_split("x '' y", (const char *const[]){"x", "", "y"}, 3);
    json_t *w = json_array();
    vs_err err = {0};
    assert_int_equal(daemon_split_command("sh -c 'open", w, &err), -1);
    assert_non_null(strstr(err.msg, "unterminated"));
    assert_int_equal(json_array_size(w), 0); /* nothing half-split is left */
    assert_int_equal(daemon_split_command("   ", w, &err), -1);
    json_decref(w);
}

static void instance_names(void **state)
{
    vs_err err = {0};
    assert_int_equal(instance_validate_name("web-1", &err), 0);
    assert_int_equal(instance_validate_name("a", &err), 0);
    const char *bad[] = {"",    "1abc",
                         "-a",  "a-",
                         "a_b", "a/b",
                         "a b", "../x",
                         "a.b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(instance_validate_name(bad[i], &err), -1);
        assert_int_equal(err.code, EINVAL);
    }
    assert_int_equal(instance_validate_name(NULL, &err), -1);
}

static void routes_take_whole_segments(void **state)
{
    struct route_params p;
    assert_true(http_route_match("/1.0/instances/{name}", "/1.0/instances/web", &p));
    assert_int_equal(p.n, 1);
    assert_string_equal(p.v[0], "web");
    assert_true(http_route_match("/1.0/instances/{name}/snapshots/{snap}/restore",
                                 "/1.0/instances/a/snapshots/s0/restore", &p));
    assert_int_equal(p.n, 2);
    assert_string_equal(p.v[1], "s0");
    assert_false(http_route_match("/1.0/instances/{name}", "/1.0/instances/", &p));
    assert_false(http_route_match("/1.0/instances/{name}", "/1.0/instances/a/b", &p));
    assert_false(http_route_match("/1.0/instances", "/1.0/instances/", &p));
    assert_false(http_route_match("/1.0", "/1.00", &p));
    char longname[400];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    char url[500];
    snprintf(url, sizeof(url), "/1.0/instances/%s", longname);
    assert_false(http_route_match("/1.0/instances/{name}", url, &p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(commands_split_like_a_shell),
        cmocka_unit_test(instance_names),
        cmocka_unit_test(routes_take_whole_segments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
