/* argv, environment and exit status */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    printf("hello from riscv64\n");
    printf("argc=%d\n", argc);
    for (int i = 1; i < argc; i++)
        printf("argv[%d]=%s\n", i, argv[i]);
    const char *v = getenv("VESSEL_TEST_VAR");
    printf("VESSEL_TEST_VAR=%s\n", v ? v : "(unset)");
    fflush(stdout);
    fprintf(stderr, "to stderr\n");
    return argc > 1 ? atoi(argv[1]) : 0;
}
