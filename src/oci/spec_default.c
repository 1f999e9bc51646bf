/* The template `spec` writes: runc's default config.json, and its rootless
 * variant (a user namespace mapping root to the caller, no network or cgroup
 * namespace, /sys bind-mounted because sysfs needs a private netns). */
#include "oci/spec.h"

#include <string.h>

static const char default_spec[] =
    "{\"ociVersion\":\"" OCI_VERSION "\","
    "\"process\":{\"terminal\":true,\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"sh\"],"
    "\"env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\","
    "\"TERM=xterm\"],\"cwd\":\"/\","
    "\"capabilities\":{"
    "\"bounding\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
    "\"effective\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
    "\"permitted\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"],"
    "\"ambient\":[\"CAP_AUDIT_WRITE\",\"CAP_KILL\",\"CAP_NET_BIND_SERVICE\"]},"
    "\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024,\"soft\":1024}],"
    "\"noNewPrivileges\":true},"
    "\"root\":{\"path\":\"rootfs\",\"readonly\":true},"
    "\"hostname\":\"vessel\","
    "\"mounts\":["
    "{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"},"
    "{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\","
    "\"options\":[\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"]},"
    "{\"destination\":\"/dev/pts\",\"type\":\"devpts\",\"source\":\"devpts\","
    "\"options\":[\"nosuid\",\"noexec\",\"newinstance\",\"ptmxmode=0666\",\"mode=0620\","
    "\"gid=5\"]},"
    "{\"destination\":\"/dev/shm\",\"type\":\"tmpfs\",\"source\":\"shm\","
    "\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"mode=1777\",\"size=65536k\"]},"
    "{\"destination\":\"/dev/mqueue\",\"type\":\"mqueue\",\"source\":\"mqueue\","
    "\"options\":[\"nosuid\",\"noexec\",\"nodev\"]},"
    "{\"destination\":\"/sys\",\"type\":\"sysfs\",\"source\":\"sysfs\","
    "\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"ro\"]},"
    "{\"destination\":\"/sys/fs/cgroup\",\"type\":\"cgroup\",\"source\":\"cgroup\","
    "\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"relatime\",\"ro\"]}],"
    "\"linux\":{\"resources\":{\"devices\":[{\"allow\":false,\"access\":\"rwm\"}]},"
    "\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"network\"},{\"type\":\"ipc\"},"
    "{\"type\":\"uts\"},{\"type\":\"mount\"},{\"type\":\"cgroup\"}],"
    "\"maskedPaths\":[\"/proc/acpi\",\"/proc/asound\",\"/proc/kcore\",\"/proc/keys\","
    "\"/proc/latency_stats\",\"/proc/timer_list\",\"/proc/timer_stats\",\"/proc/sched_debug\","
    "\"/sys/firmware\",\"/proc/scsi\"],"
    "\"readonlyPaths\":[\"/proc/bus\",\"/proc/fs\",\"/proc/irq\",\"/proc/sys\","
    "\"/proc/sysrq-trigger\"]}}";

json_t *oci_spec_default(bool rootless, uid_t uid, gid_t gid)
{
    json_t *s = json_loads(default_spec, 0, NULL);
    if (!s || !rootless)
        return s;
    json_t *lx = json_object_get(s, "linux");
    json_object_del(lx, "resources");
    json_t *nss = json_array();
    const char *keep[] = {"pid", "ipc", "uts", "mount", "user"};
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        json_array_append_new(nss, json_pack("{s:s}", "type", keep[i]));
    json_object_set_new(lx, "namespaces", nss);
    json_object_set_new(
        lx, "uidMappings",
        json_pack("[{s:i,s:I,s:i}]", "containerID", 0, "hostID", (json_int_t)uid, "size", 1));
    json_object_set_new(
        lx, "gidMappings",
        json_pack("[{s:i,s:I,s:i}]", "containerID", 0, "hostID", (json_int_t)gid, "size", 1));
    json_t *mounts = json_object_get(s, "mounts"), *out = json_array(), *m;
    size_t i;
    json_array_foreach(mounts, i, m)
    {
        const char *dst = json_string_value(json_object_get(m, "destination"));
        if (!strcmp(dst, "/sys/fs/cgroup"))
            continue;
        if (!strcmp(dst, "/sys")) {
            json_array_append_new(out,
                                  json_pack("{s:s,s:s,s:s,s:[s,s,s,s,s]}", "destination", "/sys",
                                            "type", "none", "source", "/sys", "options", "rbind",
                                            "nosuid", "noexec", "nodev", "ro"));
            continue;
        }
        if (!strcmp(dst, "/dev/pts")) {
            json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:[s,s,s,s,s]}", "destination",
                                                 "/dev/pts", "type", "devpts", "source", "devpts",
                                                 "options", "nosuid", "noexec", "newinstance",
                                                 "ptmxmode=0666", "mode=0620"));
            continue;
        }
        json_array_append(out, m);
    }
    json_object_set_new(s, "mounts", out);
    return s;
}
