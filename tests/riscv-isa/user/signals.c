/* signals: handlers for raise/kill, SA_SIGINFO with a fault address,
 * recovery from SIGSEGV with siglongjmp, skipping an illegal instruction by
 * editing the saved pc, blocking and unblocking, SIG_IGN, SA_RESETHAND,
 * and finally abort() (default action: the program dies of SIGABRT). */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ucontext.h>
#include <unistd.h>

static volatile int hits;
static sigjmp_buf env;

static void on_usr1(int sig)
{
    hits++;
    printf("handler: signal %d (hits %d)\n", sig, hits);
}

static void on_segv(int sig, siginfo_t *si, void *ctx)
{
    printf("SIGSEGV at %p code %d\n", si->si_addr, si->si_code);
    siglongjmp(env, 1);
}

static void on_ill(int sig, siginfo_t *si, void *ctx)
{
    ucontext_t *uc = ctx;
    printf("SIGILL, skipping the instruction\n");
    uc->uc_mcontext.__gregs[REG_PC] += 4;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_usr1;
    sigaction(SIGUSR1, &sa, NULL);
    raise(SIGUSR1);
    kill(getpid(), SIGUSR1);
    printf("after raise: hits %d\n", hits);

    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigprocmask(SIG_BLOCK, &set, &old);
    raise(SIGUSR1);
    printf("blocked: hits %d\n", hits);
    sigprocmask(SIG_SETMASK, &old, NULL);
    printf("unblocked: hits %d\n", hits);

    signal(SIGUSR2, SIG_IGN);
    raise(SIGUSR2);
    printf("ignored SIGUSR2\n");

    memset(&sa, 0, sizeof(sa));
    sa.sa_sigaction = on_segv;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
    if (sigsetjmp(env, 1) == 0) {
        volatile int *p = (int *)0x10;
        *p = 1;
        printf("not reached\n");
    } else {
        printf("recovered from SIGSEGV\n");
    }

    sa.sa_sigaction = on_ill;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND;
    sigaction(SIGILL, &sa, NULL);
    __asm__ volatile(".word 0xffffffff");
    printf("continued after SIGILL\n");
    struct sigaction cur;
    sigaction(SIGILL, NULL, &cur);
    printf("SA_RESETHAND: handler is default: %d\n", cur.sa_handler == SIG_DFL);

    printf("aborting\n");
    abort();
}
