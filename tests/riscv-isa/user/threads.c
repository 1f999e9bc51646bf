/* threads: pthread_create/join, a mutex-protected counter, a condition
 * variable handshake, atomics, thread-local storage and per-thread ids. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#define THREADS 4
#define ITERS 20000

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static long counter;
static atomic_long acounter;
static int ready;
static __thread int tls_value;
static long tids[THREADS];

static void *worker(void *arg)
{
    long id = (long)arg;
    tls_value = (int)id * 100;
    tids[id] = syscall(SYS_gettid);
    for (int i = 0; i < ITERS; i++) {
        pthread_mutex_lock(&lock);
        counter++;
        pthread_mutex_unlock(&lock);
        atomic_fetch_add(&acounter, 2);
    }
    pthread_mutex_lock(&lock);
    ready++;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&lock);
    return (void *)(long)(tls_value + 1);
}

int main(void)
{
    pthread_t t[THREADS];
    tls_value = -1;
    for (long i = 0; i < THREADS; i++)
        if (pthread_create(&t[i], NULL, worker, (void *)i) != 0) {
            printf("pthread_create failed\n");
            return 1;
        }
    pthread_mutex_lock(&lock);
    while (ready < THREADS)
        pthread_cond_wait(&cond, &lock);
    pthread_mutex_unlock(&lock);
    long sum = 0;
    for (int i = 0; i < THREADS; i++) {
        void *r;
        pthread_join(t[i], &r);
        sum += (long)r;
    }
    int distinct = 1;
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < i; j++)
            distinct &= tids[i] != tids[j] && tids[i] != getpid();
    printf("counter %ld atomic %ld joined %ld main tls %d distinct tids %d\n", counter,
           (long)acounter, sum, tls_value, distinct);
    return 0;
}
