/* Whole-buffer reads and writes: a read or write may move fewer bytes than
 * asked (signals, pipes, sockets, large files), so every caller would
 * otherwise write the same retry loop. */
#ifndef VESSEL_UTIL_IO_H
#define VESSEL_UTIL_IO_H

#include <stddef.h>
#include <stdint.h>

/* Each moves all n bytes, retrying after EINTR and short transfers, and
 * returns 0, or -errno with errno set as well (so callers may test either).
 * A read that meets end of file first, and a write that moves nothing, fail
 * with EIO. */
int vs_read_full(int fd, void *buf, size_t n);
int vs_write_full(int fd, const void *buf, size_t n);
int vs_pread_full(int fd, void *buf, size_t n, uint64_t off);
int vs_pwrite_full(int fd, const void *buf, size_t n, uint64_t off);
/* send(2) with flags (MSG_NOSIGNAL for a peer that may have gone). */
int vs_send_full(int fd, const void *buf, size_t n, int flags);

/* len bytes of fd from offset fd_off to out by sendfile(2) (page cache to
 * socket or file without passing through user space). */
int vs_sendfile_full(int out, int fd, uint64_t fd_off, uint64_t len);

#endif
