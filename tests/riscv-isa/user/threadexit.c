/* a thread calls exit() while the main thread waits for it forever */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void *worker(void *arg)
{
    printf("worker exits the program\n");
    fflush(stdout);
    exit(7);
}

int main(void)
{
    pthread_t t;
    pthread_mutex_t never = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&never);
    pthread_create(&t, NULL, worker, NULL);
    pthread_mutex_lock(&never); /* blocks for good */
    printf("not reached\n");
    return 0;
}
