/* config.json parser: valid specs in, typed structs out; every malformed
 * input is refused with a message naming the JSON path. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>
#include <sys/resource.h>
#include <seccomp.h>

#include "oci/spec.h"

static struct oci_spec *parse(const char *txt, vs_err *err)
{
    return oci_spec_parse(txt, strlen(txt), err);
}

static void minimal(void **state)
{
    vs_err err = {0};
    struct oci_spec *s = parse("{\"ociVersion\":\"1.0.2\",\"root\":{\"path\":\"rootfs\"},"
                               "\"process\":{\"args\":[\"sh\"],\"cwd\":\"/\"}}",
                               &err);
    assert_non_null(s);
    assert_string_equal(s->root_path, "rootfs");
    assert_false(s->root_readonly);
    assert_int_equal(s->process.n_args, 1);
    assert_string_equal(s->process.args[0], "sh");
    assert_null(s->process.args[1]);
    assert_false(s->ns[OCI_NS_PID].present);
    oci_spec_free(s);
}

static void default_spec_round_trip(void **state)
{
    vs_err err = {0};
    for (int rootless = 0; rootless < 2; rootless++) {
        json_t *j = oci_spec_default(rootless, 1000, 1000);
        char *txt = json_dumps(j, 0);
        struct oci_spec *s = parse(txt, &err);
        assert_non_null(s);
        assert_true(s->root_readonly);
        assert_true(s->process.no_new_privileges);
        assert_true(s->process.caps.present);
        assert_true(s->process.caps.bounding & (1ULL << 5));   /* CAP_KILL */
        assert_false(s->process.caps.bounding & (1ULL << 21)); /* CAP_SYS_ADMIN */
        assert_int_equal(s->process.n_rlimits, 1);
        assert_int_equal(s->process.rlimits[0].resource, RLIMIT_NOFILE);
        assert_true(s->ns[OCI_NS_PID].present && !s->ns[OCI_NS_PID].path);
        assert_int_equal(s->ns[OCI_NS_USER].present, rootless);
        if (rootless) {
            assert_int_equal(s->n_uid_maps, 1);
            assert_int_equal(s->uid_maps[0].host_id, 1000);
        } else {
            assert_true(s->has_resources);
            assert_int_equal(s->resources.n_dev_rules, 1);
        }
        assert_true(s->n_mounts >= 5);
        assert_true(s->n_masked_paths > 0 && s->n_readonly_paths > 0);
        oci_spec_free(s);
        free(txt);
        json_decref(j);
    }
}

static void full_linux_section(void **state)
{
    const char *txt =
        "{\"ociVersion\":\"1.1.0\",\"root\":{\"path\":\"/r\",\"readonly\":true},"
        "\"hostname\":\"h\",\"process\":{\"args\":[\"a\",\"b\"],\"env\":[\"A=1\"],"
        "\"user\":{\"uid\":5,\"gid\":6,\"umask\":18,\"additionalGids\":[7,8]},"
        "\"rlimits\":[{\"type\":\"RLIMIT_NPROC\",\"soft\":10,\"hard\":20}],"
        "\"oomScoreAdj\":-100,\"capabilities\":{\"effective\":[\"CAP_CHOWN\",\"CAP_BOGUS\"]}},"
        "\"mounts\":[{\"destination\":\"/p\",\"type\":\"proc\",\"source\":\"proc\","
        "\"options\":[\"nosuid\"]}],"
        "\"hooks\":{\"poststop\":[{\"path\":\"/bin/true\",\"timeout\":3}]},"
        "\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\",\"path\":"
        "\"/proc/1/ns/net\"},{\"type\":\"user\"},{\"type\":\"time\"}],"
        "\"uidMappings\":[{\"containerID\":0,\"hostID\":1000,\"size\":1}],"
        "\"timeOffsets\":{\"monotonic\":{\"secs\":5,\"nanosecs\":7}},"
        "\"devices\":[{\"path\":\"/dev/x\",\"type\":\"c\",\"major\":1,\"minor\":3}],"
        "\"cgroupsPath\":\"/a/b\",\"sysctl\":{\"net.ipv4.ip_forward\":\"1\"},"
        "\"resources\":{\"memory\":{\"limit\":1048576,\"swap\":-1},\"cpu\":{\"shares\":512,"
        "\"quota\":50000,\"period\":100000,\"cpus\":\"0\"},\"pids\":{\"limit\":9},"
        "\"blockIO\":{\"weight\":100,\"throttleReadBpsDevice\":[{\"major\":8,\"minor\":0,"
        "\"rate\":1000}]},\"hugepageLimits\":[{\"pageSize\":\"2MB\",\"limit\":4194304}],"
        "\"devices\":[{\"allow\":false,\"access\":\"rwm\"}],\"unified\":{\"io.weight\":\"50\"}},"
        "\"seccomp\":{\"defaultAction\":\"SCMP_ACT_ERRNO\",\"defaultErrnoRet\":38,"
        "\"architectures\":[\"SCMP_ARCH_X86_64\"],\"syscalls\":[{\"names\":[\"read\"],"
        "\"action\":\"SCMP_ACT_ALLOW\",\"args\":[{\"index\":0,\"value\":0,\"op\":"
        "\"SCMP_CMP_EQ\"}]}]}}}";
    vs_err err = {0};
    struct oci_spec *s = parse(txt, &err);
    assert_non_null(s);
    assert_string_equal(s->hostname, "h");
    assert_int_equal(s->process.user.uid, 5);
    assert_int_equal(s->process.user.n_additional_gids, 2);
    assert_int_equal(s->process.user.additional_gids[1], 8);
    assert_int_equal(s->process.user.umask, 18);
    assert_int_equal(s->process.oom_score_adj, -100);
    assert_int_equal(s->process.caps.effective, 1ULL << 0); /* unknown names are skipped */
    assert_string_equal(s->ns[OCI_NS_NET].path, "/proc/1/ns/net");
    assert_true(s->ns[OCI_NS_TIME].present);
    assert_int_equal(s->time_monotonic.secs, 5);
    assert_int_equal(s->hooks.n_poststop, 1);
    assert_int_equal(s->hooks.poststop[0].timeout, 3);
    assert_int_equal(s->resources.mem_limit, 1048576);
    assert_int_equal(s->resources.mem_swap, -1);
    assert_int_equal(s->resources.cpu_shares, 512);
    assert_string_equal(s->resources.cpu_cpus, "0");
    assert_int_equal(s->resources.pids_limit, 9);
    assert_int_equal(s->resources.n_blkio_devs, 1);
    assert_string_equal(s->resources.blkio_devs[0].which, "read_bps");
    assert_int_equal(s->resources.n_hugetlb, 1);
    /* the spec's device gets an allow rule after the deny-all */
    assert_int_equal(s->resources.n_dev_rules, 2);
    assert_true(s->resources.dev_rules[1].allow);
    assert_int_equal(s->n_sysctls, 1);
    assert_true(s->seccomp.present);
    assert_int_equal(s->seccomp.default_action, SCMP_ACT_ERRNO(38));
    assert_int_equal(s->seccomp.n_rules, 1);
    assert_int_equal(s->seccomp.rules[0].n_args, 1);
    oci_spec_free(s);
}

struct bad_case {
    const char *json;
    const char *needle;
};

static void malformed(void **state)
{
    static const struct bad_case cases[] = {
        {"{", "invalid JSON"},
        {"[]", "top level"},
        {"{\"root\":{\"path\":\"r\"}}", "ociVersion: missing"},
        {"{\"ociVersion\":\"2.0.0\",\"root\":{\"path\":\"r\"}}", "not supported"},
        {"{\"ociVersion\":1,\"root\":{\"path\":\"r\"}}", "ociVersion: expected a string"},
        {"{\"ociVersion\":\"1.0.0\"}", "root.path: missing"},
        {"{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"},\"process\":{\"args\":[]}}",
         "at least one"},
        {"{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"},\"process\":{\"args\":[1]}}",
         "process.args[0]"},
        {"{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"},\"process\":{\"args\":[\"a\"],"
         "\"cwd\":\"rel\"}}",
         "cwd"},
        {"{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"},\"linux\":{\"namespaces\":[{"
         "\"type\":\"bogus\"}]}}",
         "unknown namespace type 'bogus'"},
        {"{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"},\"linux\":{\"namespaces\":[{"
         "\"type\":\"pid\"},{\"type\":\"pid\"}]}}",
         "twice"},
        {"{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"},\"linux\":{\"uidMappings\":[{"
         "\"containerID\":0,\"hostID\":1,\"size\":1}]}}",
         "without a new user namespace"},
        /* a relative destination is allowed (relative to "/"); an empty one is not */
        {"{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"},\"mounts\":[{\"destination\":"
         "\"\"}]}",
         "mounts[0].destination"},
        {"{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"},\"process\":{\"args\":[\"a\"],"
         "\"rlimits\":[{\"type\":\"RLIMIT_CORE\",\"soft\":1,\"hard\":1},"
         "{\"type\":\"RLIMIT_CORE\",\"soft\":2,\"hard\":2}]}}",
         "listed twice"},
        {"{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"},\"annotations\":{\"k\":1}}",
         "annotations.k"},
        {"{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"},\"annotations\":{\"\":\"v\"}}",
         "annotations."},
        {"{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"},\"process\":{\"args\":[\"a\"],"
         "\"rlimits\":[{\"type\":\"RLIMIT_BOGUS\",\"soft\":1,\"hard\":1}]}}",
         "unknown rlimit"},
        {"{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"},\"linux\":{\"seccomp\":{"
         "\"defaultAction\":\"SCMP_ACT_NOPE\"}}}",
         "unknown action"},
        {"{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"},\"linux\":{\"resources\":{"
         "\"memory\":{\"limit\":\"big\"}}}}",
         "memory.limit"},
        {"{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"},\"hooks\":{\"prestart\":[{"
         "\"path\":\"rel\"}]}}",
         "absolute"},
        {"{\"ociVersion\":\"1.0.0\",\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"}}",
         "duplicate"},
        {"{\"ociVersion\":\"1.0.0\",\"root\":{\"path\":\"r\"},\"linux\":{\"sysctl\":{"
         "\"../x\":\"1\"}}}",
         "sysctl"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        vs_err err = {0};
        struct oci_spec *s = parse(cases[i].json, &err);
        if (s)
            fail_msg("case %zu parsed: %s", i, cases[i].json);
        if (!strstr(err.msg, cases[i].needle))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].needle);
        assert_null(strchr(err.msg, '\n'));
    }
}

static void process_file(void **state)
{
    json_t *j = json_loads("{\"args\":[\"ls\"],\"terminal\":true,\"consoleSize\":{\"height\":"
                           "10,\"width\":20},\"noNewPrivileges\":true}",
                           0, NULL);
    struct oci_process p;
    struct oci_arena a = {0};
    vs_err err = {0};
    assert_int_equal(oci_process_parse(j, &p, &a, &err), 0);
    assert_true(p.terminal);
    assert_int_equal(p.console_width, 20);
    assert_true(p.no_new_privileges);
    oci_arena_release(&a);
    json_decref(j);
}

static void caps_and_ns_names(void **state)
{
    assert_int_equal(oci_cap_from_name("CAP_SYS_ADMIN"), 21);
    assert_int_equal(oci_cap_from_name("cap_chown"), 0);
    assert_int_equal(oci_cap_from_name("SYS_ADMIN"), -1);
    assert_string_equal(oci_cap_name(21), "CAP_SYS_ADMIN");
    assert_true(oci_cap_last() >= 37);
    assert_string_equal(oci_ns_name(OCI_NS_NET), "network");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(minimal),
        cmocka_unit_test(default_spec_round_trip),
        cmocka_unit_test(full_linux_section),
        cmocka_unit_test(malformed),
        cmocka_unit_test(process_file),
        cmocka_unit_test(caps_and_ns_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
