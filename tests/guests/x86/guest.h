/* What guest.c shares with the tests kept in files of their own
 * (hostile.c). */
#ifndef VESSEL_TEST_GUEST_H
#define VESSEL_TEST_GUEST_H
#include "x86io.h"

void puts_(const char *s);
void putx(u64 v);
void putu(u64 v);
u8 *find_table(const char *sig);
u64 arg_u64(const char *key);
void poweroff(void) __attribute__((noreturn));

void test_hostile(void);
#endif
