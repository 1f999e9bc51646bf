/* executes an illegal instruction: the emulator must stop with SIGILL */
#include <stdio.h>

int main(void)
{
    printf("before\n");
    fflush(stdout);
    __asm__ volatile(".word 0xffffffff");
    printf("after (must not be printed)\n");
    return 0;
}
