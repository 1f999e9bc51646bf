/* The machine interface (vm/machine.h) and the runner above it, driven
 * with a fake machine: pause, save state, resume and load state through
 * vm_control only, and the control API reaching the machine through the
 * runner, never by name. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "api/client.h"
#include "fake_machine.h"
#include "vm/machine.h"
#include "vm/pause.h"

static struct fake fk;
static struct vm_control fctl;
static int created, destroyed, ran, loaded;
static char sock[600];
static const char *expect_origin; /* a restore's snapshot, as GET /vm names it */

static int fk_load(void *m, struct state_reader *r, vs_err *e)
{
    struct fake *f = m;
    uint32_t version;
    if (state_find(r, "fake", 0, &version, e) < 0 || state_get_u32(r, &f->counter, e) < 0)
        return -1;
    loaded++;
    return 0;
}

static int fake_create(const struct vm_config *cfg, struct guest_mem *adopt,
                       const struct vm_host *host, struct vm_control **out, vs_err *err)
{
    assert_non_null(host->console);
    fake_machine_init(&fk, &fctl);
    fctl.load_state = fk_load;
    if (adopt)
        guest_mem_destroy(adopt);
    created++;
    *out = &fctl;
    return 0;
}

static json_t *req(const char *method, const char *path)
{
    json_t *resp = NULL;
    vs_err err;
    assert_int_equal(api_client_request(sock, method, path, NULL, &resp, &err), 0);
    return resp;
}

static const char *state_of(json_t *r)
{
    return json_string_value(json_object_get(r, "state"));
}

/* The "guest" runs while the test, as an API client, pauses, inspects,
 * resumes and stops it. */
static int fake_run(struct vm_control *ctl, vs_err *err)
{
    ran++;
    assert_ptr_equal(ctl, &fctl);
    if (!sock[0])
        return 7;
    json_t *r = req("PUT", "/vm/pause");
    assert_string_equal(state_of(r), "paused");
    assert_true(fk.paused);
    json_decref(r);
    r = req("GET", "/vm");
    assert_string_equal(state_of(r), "paused");
    assert_string_equal(json_string_value(json_object_get(r, "arch")), "x86_64");
    json_t *last = json_object_get(r, "last_snapshot");
    if (expect_origin) {
        assert_string_equal(json_string_value(json_object_get(last, "path")), expect_origin);
        assert_true(json_is_true(json_object_get(last, "diff_possible")));
    } else {
        assert_null(last);
    }
    json_decref(r);
    r = req("PUT", "/vm/resume");
    assert_string_equal(state_of(r), "running");
    assert_false(fk.paused);
    json_decref(r);
    r = req("PUT", "/vm/stop");
    json_decref(r);
    for (int i = 0; i < 200 && !__atomic_load_n(&fk.stopped, __ATOMIC_ACQUIRE); i++)
        usleep(10000);
    assert_true(fk.stopped);
    return 7;
}

static void fake_destroy(struct vm_control *ctl)
{
    assert_ptr_equal(ctl, &fctl);
    fake_machine_free(&fk);
    destroyed++;
}

static const struct vm_machine_ops fake_type = {
    .arch = VM_ARCH_X86_64,
    .create = fake_create,
    .run = fake_run,
    .destroy = fake_destroy,
};

static void reset_counts(void)
{
    created = destroyed = ran = loaded = 0;
    sock[0] = 0;
    expect_origin = NULL;
}

static void registry(void **state)
{
    vs_err err;
    const enum vm_arch archs[] = {VM_ARCH_X86_64, VM_ARCH_RISCV64};
    for (size_t i = 0; i < 2; i++) {
        const struct vm_machine_ops *t = vm_machine_find(archs[i], &err);
        assert_non_null(t);
        assert_int_equal(t->arch, archs[i]);
        assert_non_null(t->create);
        assert_non_null(t->run);
        assert_non_null(t->destroy);
    }
    /* the emulated machine depends on nothing from the host CPU */
    const uint8_t blob[16] = {0};
    assert_int_equal(vm_machine_check_cpu_features(VM_ARCH_RISCV64, blob, 16, &err), 0);
    /* an empty record needs no /dev/kvm */
    assert_int_equal(vm_machine_check_cpu_features(VM_ARCH_X86_64, blob, 0, &err), 0);
}

/* pause, save state, resume: what a snapshot does, through the ops only */
static void pause_save_resume(void **state)
{
    struct fake f;
    struct vm_control c;
    vs_err err;
    fake_machine_init(&f, &c);
    struct state_writer w;
    state_writer_init(&w);
    assert_int_equal(c.pause(c.machine, &err), 0);
    assert_true(c.is_paused(c.machine));
    assert_int_equal(c.save_state(c.machine, &w, &err), 0);
    assert_int_equal(c.resume(c.machine, &err), 0);
    assert_false(c.is_paused(c.machine));
    assert_int_equal(f.pauses, 1);
    assert_int_equal(f.resumes, 1);

    struct state_reader r;
    uint32_t version, counter;
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    assert_true(state_find(&r, "fake", 0, &version, &err) >= 0);
    assert_int_equal(state_get_u32(&r, &counter, &err), 0);
    assert_int_equal(version, 1);
    assert_int_equal(counter, 41);
    state_writer_free(&w);
    fake_machine_free(&f);
}

/* the runner creates, runs and destroys; with an API socket the API
 * reaches the machine through vm_control while it runs */
static void runner_with_api(void **state)
{
    reset_counts();
    char dir[] = "/tmp/vessel-runner-XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(sock, sizeof(sock), "%s/api.sock", dir);
    struct vm_config cfg;
    vm_config_init(&cfg);
    cfg.seccomp = VM_SECCOMP_OFF; /* filters stay on a thread: test_jail_seccomp forks for them */
    cfg.console = strdup("none");
    cfg.api_sock = strdup(sock);
    vs_err err;
    assert_int_equal(vm_runner_run(&fake_type, &cfg, NULL, &err), 7);
    assert_int_equal(created, 1);
    assert_int_equal(ran, 1);
    assert_int_equal(destroyed, 1);
    assert_int_equal(loaded, 0);
    /* the runner stopped the API server with the machine */
    assert_int_not_equal(access(sock, F_OK), 0);
    vm_config_free(&cfg);
    rmdir(dir);
}

/* a restore: the saved sections reach the new machine's load_state before
 * it runs */
static void runner_restore(void **state)
{
    reset_counts();
    struct state_writer w;
    state_writer_init(&w);
    state_begin(&w, "fake", 0, 1);
    state_put_u32(&w, 99);
    state_end(&w);
    vs_err err;
    struct state_reader r;
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    struct guest_mem mem;
    guest_mem_init(&mem);
    assert_int_equal(guest_mem_add_anon(&mem, 0, 2 * MiB, &err), 0);
    struct vm_restore_source src = {.mem = &mem, .state = &r};
    struct vm_config cfg;
    vm_config_init(&cfg);
    cfg.seccomp = VM_SECCOMP_OFF; /* filters stay on a thread: test_jail_seccomp forks for them */
    cfg.console = strdup("none");
    assert_int_equal(vm_runner_run(&fake_type, &cfg, &src, &err), 7);
    assert_int_equal(loaded, 1);
    assert_int_equal(ran, 1);
    assert_int_equal(destroyed, 1);

    /* with the control API: the restored VM's snapshots start from the one
     * it came from (no process-wide record of it) */
    reset_counts();
    char dir[] = "/tmp/vessel-runner-XXXXXX";
    assert_non_null(mkdtemp(dir));
    snprintf(sock, sizeof(sock), "%s/api.sock", dir);
    cfg.api_sock = strdup(sock);
    guest_mem_init(&mem);
    assert_int_equal(guest_mem_add_anon(&mem, 0, 2 * MiB, &err), 0);
    assert_int_equal(state_reader_init(&r, w.buf.data, w.buf.len, &err), 0);
    src = (struct vm_restore_source){
        .mem = &mem, .state = &r, .origin_dir = "/snapshots/base", .origin_id = "0123abcd"};
    expect_origin = "/snapshots/base";
    assert_int_equal(vm_runner_run(&fake_type, &cfg, &src, &err), 7);
    assert_int_equal(loaded, 1);
    rmdir(dir);
    vm_config_free(&cfg);
    state_writer_free(&w);
}

/* the shared pause protocol: a machine whose vCPUs park as soon as they
 * are kicked, and one that is stopping */
struct pmachine {
    bool parked, stopping;
    int kicks;
};
static void pm_kick(void *m)
{
    struct pmachine *p = m;
    p->kicks++;
    p->parked = true;
}
static bool pm_all_parked(void *m)
{
    return ((struct pmachine *)m)->parked;
}
static bool pm_stopping(void *m)
{
    return ((struct pmachine *)m)->stopping;
}

static void pause_protocol(void **state)
{
    static const struct vm_pause_hooks hooks = {
        .kick = pm_kick, .all_parked = pm_all_parked, .stopping = pm_stopping};
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
    struct virtio_set *none = NULL;
    struct pmachine pm = {0};
    struct vm_pause p = {
        .lock = &lock, .cond = &cond, .hooks = &hooks, .machine = &pm, .devices = &none};
    vs_err err;
    assert_false(vm_is_paused(&p));
    assert_int_equal(vm_pause(&p, &err), 0);
    assert_true(vm_pause_requested(&p));
    assert_true(vm_is_paused(&p));
    assert_int_equal(vm_pause(&p, &err), 0); /* idempotent: no second kick */
    assert_int_equal(pm.kicks, 1);
    assert_int_equal(vm_resume(&p, &err), 0);
    assert_false(vm_pause_requested(&p));
    assert_false(vm_is_paused(&p));
    /* a machine on its way out does not pause */
    pm = (struct pmachine){.stopping = true};
    assert_int_equal(vm_pause(&p, &err), -1);
    assert_int_equal(err.code, ESHUTDOWN);
    assert_false(vm_is_paused(&p));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registry),       cmocka_unit_test(pause_save_resume),
        cmocka_unit_test(pause_protocol), cmocka_unit_test(runner_with_api),
        cmocka_unit_test(runner_restore),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
