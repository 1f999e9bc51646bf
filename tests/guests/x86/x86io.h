/* Port and MMIO accessors shared by vessel's freestanding x86 test guests
 * (tests/guests/x86 and tests/integration/virtio/x86_guest). */
#ifndef VESSEL_TEST_X86IO_H
#define VESSEL_TEST_X86IO_H
#include <stdint.h>

typedef uint64_t u64;
typedef uint32_t u32;
typedef uint16_t u16;
typedef uint8_t u8;

static inline void outb(u16 port, u8 v)
{
    __asm__ volatile("outb %0, %1" ::"a"(v), "Nd"(port));
}
static inline void outw(u16 port, u16 v)
{
    __asm__ volatile("outw %0, %1" ::"a"(v), "Nd"(port));
}
static inline void outl(u16 port, u32 v)
{
    __asm__ volatile("outl %0, %1" ::"a"(v), "Nd"(port));
}
static inline u8 inb(u16 port)
{
    u8 v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline u32 inl(u16 port)
{
    u32 v;
    __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}
static inline u32 mmio_read32(u64 addr)
{
    return *(volatile u32 *)addr;
}
static inline void mmio_write32(u64 addr, u32 v)
{
    *(volatile u32 *)addr = v;
}
static inline void mmio_write16(u64 addr, u16 v)
{
    *(volatile u16 *)addr = v;
}
#endif
