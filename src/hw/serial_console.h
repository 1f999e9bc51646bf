/* The host side of a serial console: where the guest's UART output goes and
 * where its input comes from, chosen by --console:
 *   stdio      output to stdout, input from stdin. A terminal is put in raw
 *              mode (restored on close) and Ctrl-A x quits, Ctrl-A Ctrl-A
 *              sends a Ctrl-A; a pipe or file on stdin is forwarded as is.
 *   none       output discarded, no input.
 *   file:PATH  output written to PATH (truncated), no input.
 * Input is read on the console's own thread and pushed into the device via a
 * sink that may accept only part of it (a full FIFO); the rest waits until
 * the device calls serial_console_rx_ready(). */
#ifndef VESSEL_HW_SERIAL_CONSOLE_H
#define VESSEL_HW_SERIAL_CONSOLE_H

#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

struct serial_console;

/* Push host input into the device; returns the number of bytes taken. */
typedef size_t (*serial_console_sink_fn)(void *opaque, const uint8_t *buf, size_t len);
/* The user typed the quit escape (runs on the console thread). */
typedef void (*serial_console_quit_fn)(void *opaque);

/* Parse spec and open the output (nothing is started yet, the terminal is
 * untouched). One line in err for a bad spec or an unwritable file. */
int serial_console_open(const char *spec, struct serial_console **out, vs_err *err);
/* Raw mode for a terminal and the input thread. Without input (none, file,
 * or stdin closed) this does nothing. */
int serial_console_start(struct serial_console *c, serial_console_sink_fn sink,
                         serial_console_quit_fn quit, void *opaque, vs_err *err);
/* Stop the input thread, restore the terminal, close the output. NULL ok. */
void serial_console_close(struct serial_console *c);

/* Guest output, buffered: a newline, a full buffer or 3 ms without more
 * output writes it out. Never blocks forever on a dead reader (EPIPE is
 * dropped). */
void serial_console_write(struct serial_console *c, const uint8_t *buf, size_t len);
/* Write out what is buffered (before printing something of our own). */
void serial_console_flush(struct serial_console *c);
/* The device has room for input again. Safe from any thread. */
void serial_console_rx_ready(struct serial_console *c);

/* Adapters with the uart8250 callback signatures (opaque = the console). */
void serial_console_uart_tx(void *console, const uint8_t *buf, size_t len);
void serial_console_uart_rx_ready(void *console);

#endif
