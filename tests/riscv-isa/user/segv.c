/* dereferences an unmapped address: the emulator must stop with SIGSEGV */
#include <stdio.h>

int main(void)
{
    printf("before\n");
    fflush(stdout);
    volatile int *p = (int *)0x8;
    return *p;
}
