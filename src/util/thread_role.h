/* What a thread of a VM process is for, told by the thread itself when it
 * starts. The process policy above the machines (src/jail: per-thread
 * seccomp filters) registers a hook here; the device models, machines and
 * the API server only name their threads' roles and never include it. */
#ifndef VESSEL_UTIL_THREAD_ROLE_H
#define VESSEL_UTIL_THREAD_ROLE_H

enum vs_thread_role {
    VS_THREAD_MAIN, /* the thread that runs the machine (boot, reboot, join, tear-down) */
    VS_THREAD_VCPU, /* a KVM vCPU or an emulated hart: runs guest code */
    VS_THREAD_IO,   /* device workers, the event loop, the console, the signal thread */
    VS_THREAD_API,  /* the control API server (snapshots, pause, hot-plug) */
    VS_THREAD_NROLES,
};

typedef void (*vs_thread_role_hook)(enum vs_thread_role role, const char *name);

/* At most one hook (NULL removes it); set before the threads start. */
void vs_thread_role_set_hook(vs_thread_role_hook hook);
/* Called by a thread before it does its work: the hook (a seccomp filter)
 * applies from here on to this thread and the threads it starts. name is
 * for messages (the thread's name if NULL). */
void vs_thread_role_enter(enum vs_thread_role role, const char *name);
const char *vs_thread_role_name(enum vs_thread_role role);

#endif
