/* disco.h: helpers for external map/reduce programs written in C.
 *
 * An external program is started as "op map" or "op reduce" (see the Python side in
 * disco/worker/classic/external.py).  It first reads the job's ext_params, then key/value
 * records <uint32 len><key><uint32 len><value> (native byte order) from stdin, and
 * answers on stdout with result lists: <uint32 count> followed by count key/value
 * records.  Lines "**<MSG> text" on stderr become task messages, "**<ERR> text"
 * fails the task.
 *
 * Build a program with:
 *     EXT=$(python3 -c 'from disco.worker.classic.external import ext_dir; print(ext_dir())')
 *     gcc -I "$EXT" prog.c "$EXT/disco.c" -o prog
 * ext_dir() is $DISCO_HOME/ext when that folder holds disco.h, else the copy installed
 * with the Python package (disco/ext/).
 *
 * The function names follow Disco 0.5's ext/disco.h.  Unlike 0.5, the parameters are
 * not returned as a Judy array: read_parameters() returns a small table that
 * disco_param() / disco_param_entry() look up (docs/decisions.md).
 */
#ifndef DISCO_EXT_DISCO_H
#define DISCO_EXT_DISCO_H

/* A counted string.  data holds len bytes followed by a zero byte; the buffer has room
 * for sze bytes (len < sze).  Allocated as one block: malloc(sizeof(p_entry) + n). */
typedef struct {
    unsigned int len;
    unsigned int sze;
    char data[];
} p_entry;

/* The parameter table read by read_parameters(). */
typedef struct disco_params disco_params;

/* Reads the parameter block that starts the input; call it once, before read_kv().
 * Returns the table (never NULL; empty when the job gave no dict of ext_params). */
const disco_params *read_parameters(void);

/* The value of parameter key as a zero-terminated string, or NULL when it is absent
 * (or read_parameters() was not called).  Values may hold zero bytes: use
 * disco_param_entry() for their length. */
const char *disco_param(const char *key);

/* The value of parameter key in params as a p_entry, or NULL when absent. */
const p_entry *disco_param_entry(const disco_params *params, const char *key);

/* Number of parameters in params. */
unsigned int disco_param_count(const disco_params *params);

/* Reads the next key/value record into *key and *val, growing (or allocating, when
 * NULL) them as needed; the same entries can be passed again on every call.  Returns 1,
 * or 0 at the end of the input.  A truncated record kills the program with die(). */
int read_kv(p_entry **key, p_entry **val);

/* Starts a result list of num records: exactly num write_kv() calls must follow.
 * The output is flushed when the list is complete (at once when num is 0). */
void write_num_prefix(int num);

/* Writes one key/value record of the current result list. */
void write_kv(const p_entry *key, const p_entry *val);

/* Sends a task message (printf format; newlines become spaces). */
void msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Fails the task with a message (printf format) and exits with status 1. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* malloc() that dies when memory runs out. */
void *dxmalloc(unsigned int size);

/* Copies src into *dst, growing *dst when needed or allocating it when NULL. */
void copy_entry(p_entry **dst, const p_entry *src);

/* A new entry holding len bytes of data (plus the zero byte); free() it when done. */
p_entry *make_entry(const char *data, unsigned int len);

#endif
