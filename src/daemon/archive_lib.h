/* libarchive, loaded only while an image operation runs (import, publish).
 * Linked for good it maps libxml2, ICU and libstdc++ with it, about 2.8 MiB
 * of the daemon's resident memory (bench/daemon) for work it does now and
 * then. Files that include this header call libarchive as usual; the
 * macros below route each call through the table of the loaded library.
 * Every user brackets its work with archive_lib_acquire/release. */
#ifndef VESSEL_DAEMON_ARCHIVE_LIB_H
#define VESSEL_DAEMON_ARCHIVE_LIB_H

#include <archive.h>
#include <archive_entry.h>

#include "util/err.h"

#define ARCHIVE_LIB_FUNCS(X)                                                                       \
    X(archive_error_string)                                                                        \
    X(archive_entry_free)                                                                          \
    X(archive_read_free)                                                                           \
    X(archive_errno)                                                                               \
    X(archive_write_header)                                                                        \
    X(archive_write_free)                                                                          \
    X(archive_read_support_format_tar)                                                             \
    X(archive_read_support_format_gnutar)                                                          \
    X(archive_read_support_filter_all)                                                             \
    X(archive_read_new)                                                                            \
    X(archive_entry_size)                                                                          \
    X(archive_entry_pathname)                                                                      \
    X(archive_write_set_format_pax_restricted)                                                     \
    X(archive_write_open_filename)                                                                 \
    X(archive_write_new)                                                                           \
    X(archive_write_finish_entry)                                                                  \
    X(archive_write_disk_set_options)                                                              \
    X(archive_write_disk_new)                                                                      \
    X(archive_write_data_block)                                                                    \
    X(archive_write_data)                                                                          \
    X(archive_write_close)                                                                         \
    X(archive_set_error)                                                                           \
    X(archive_read_open_fd)                                                                        \
    X(archive_read_open)                                                                           \
    X(archive_read_next_header2)                                                                   \
    X(archive_read_next_header)                                                                    \
    X(archive_read_disk_set_standard_lookup)                                                       \
    X(archive_read_disk_set_behavior)                                                              \
    X(archive_read_disk_open)                                                                      \
    X(archive_read_disk_new)                                                                       \
    X(archive_read_disk_descend)                                                                   \
    X(archive_read_data_block)                                                                     \
    X(archive_entry_sourcepath)                                                                    \
    X(archive_entry_set_pathname)                                                                  \
    X(archive_entry_set_hardlink)                                                                  \
    X(archive_entry_new)                                                                           \
    X(archive_entry_hardlink)                                                                      \
    X(archive_entry_filetype)                                                                      \
    X(archive_entry_copy_pathname)

struct archive_lib {
#define ARCHIVE_LIB_SLOT(f) __typeof__(f) *f;
    ARCHIVE_LIB_FUNCS(ARCHIVE_LIB_SLOT)
#undef ARCHIVE_LIB_SLOT
};
extern struct archive_lib archive_lib;

/* Load libarchive (the first user) or count one more user. */
int archive_lib_acquire(vs_err *err);
/* One user less; the last one unloads it. */
void archive_lib_release(void);

#ifndef ARCHIVE_LIB_NO_MACROS
#define archive_error_string archive_lib.archive_error_string
#define archive_entry_free archive_lib.archive_entry_free
#define archive_read_free archive_lib.archive_read_free
#define archive_errno archive_lib.archive_errno
#define archive_write_header archive_lib.archive_write_header
#define archive_write_free archive_lib.archive_write_free
#define archive_read_support_format_tar archive_lib.archive_read_support_format_tar
#define archive_read_support_format_gnutar archive_lib.archive_read_support_format_gnutar
#define archive_read_support_filter_all archive_lib.archive_read_support_filter_all
#define archive_read_new archive_lib.archive_read_new
#define archive_entry_size archive_lib.archive_entry_size
#define archive_entry_pathname archive_lib.archive_entry_pathname
#define archive_write_set_format_pax_restricted archive_lib.archive_write_set_format_pax_restricted
#define archive_write_open_filename archive_lib.archive_write_open_filename
#define archive_write_new archive_lib.archive_write_new
#define archive_write_finish_entry archive_lib.archive_write_finish_entry
#define archive_write_disk_set_options archive_lib.archive_write_disk_set_options
#define archive_write_disk_new archive_lib.archive_write_disk_new
#define archive_write_data_block archive_lib.archive_write_data_block
#define archive_write_data archive_lib.archive_write_data
#define archive_write_close archive_lib.archive_write_close
#define archive_set_error archive_lib.archive_set_error
#define archive_read_open_fd archive_lib.archive_read_open_fd
#define archive_read_open archive_lib.archive_read_open
#define archive_read_next_header2 archive_lib.archive_read_next_header2
#define archive_read_next_header archive_lib.archive_read_next_header
#define archive_read_disk_set_standard_lookup archive_lib.archive_read_disk_set_standard_lookup
#define archive_read_disk_set_behavior archive_lib.archive_read_disk_set_behavior
#define archive_read_disk_open archive_lib.archive_read_disk_open
#define archive_read_disk_new archive_lib.archive_read_disk_new
#define archive_read_disk_descend archive_lib.archive_read_disk_descend
#define archive_read_data_block archive_lib.archive_read_data_block
#define archive_entry_sourcepath archive_lib.archive_entry_sourcepath
#define archive_entry_set_pathname archive_lib.archive_entry_set_pathname
#define archive_entry_set_hardlink archive_lib.archive_entry_set_hardlink
#define archive_entry_new archive_lib.archive_entry_new
#define archive_entry_hardlink archive_lib.archive_entry_hardlink
#define archive_entry_filetype archive_lib.archive_entry_filetype
#define archive_entry_copy_pathname archive_lib.archive_entry_copy_pathname
#endif

#endif
