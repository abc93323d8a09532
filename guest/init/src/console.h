/* The serial console as the workload's stdio, in docker's -t or non -t behaviour. */
#ifndef VMRUN_CONSOLE_H
#define VMRUN_CONSOLE_H

/** Reopens /dev/console as fds 0, 1 and 2 of init (the kernel may not have). */
void console_attach_init_stdio(void);

/**
 * Sets the console's line discipline: with `tty`, a cooked terminal of rows x cols
 * (the host's terminal is raw, the guest edits and echoes); without, a raw byte
 * pipe (no echo, no CR/LF translation), so output reaches the host unchanged.
 */
void console_configure(int tty, unsigned rows, unsigned cols);

/**
 * In the workload's child: for `tty`, starts a new session with the console's tty
 * (e.g. /dev/ttyS0) as its controlling terminal and makes it fds 0-2.
 * Returns 0, or -1 with errno set.
 */
int console_make_controlling(void);

/** Waits (at most ~2 s) for queued console output to leave the UART. */
void console_drain(void);

#endif
