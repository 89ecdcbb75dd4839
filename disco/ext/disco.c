/* disco.c: the helpers declared in disco.h for external programs in C. */
#include "disco.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ITEM_SIZE (1024u * 1024u * 1024u) /* as the worker: 1 GiB per key or value */

struct disco_params {
    unsigned int count;
    p_entry **keys;
    p_entry **values;
};

static disco_params *last_params;
static int pending_pairs;

static void report(const char *tag, const char *fmt, va_list ap) {
    char *text = NULL;
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n >= 0 && (text = malloc((size_t)n + 1)) != NULL) {
        vsnprintf(text, (size_t)n + 1, fmt, ap);
        for (char *c = text; *c; c++)
            if (*c == '\n' || *c == '\r') *c = ' ';
    }
    /* One fputs per line so that a message is never split. */
    size_t size = strlen(tag) + (text ? strlen(text) : 0) + 3;
    char *line = malloc(size);
    if (line != NULL) {
        snprintf(line, size, "%s %s\n", tag, text ? text : fmt);
        fputs(line, stderr);
        free(line);
    } else {
        fprintf(stderr, "%s out of memory\n", tag);
    }
    fflush(stderr);
    free(text);
}

void msg(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    report("**<MSG>", fmt, ap);
    va_end(ap);
}

void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    report("**<ERR>", fmt, ap);
    va_end(ap);
    fflush(stdout);
    exit(1);
}

void *dxmalloc(unsigned int size) {
    void *p = malloc(size ? size : 1);
    if (p == NULL) die("out of memory (allocating %u bytes)", size);
    return p;
}

/* Makes *e able to hold len bytes plus the zero byte. */
static void reserve(p_entry **e, unsigned int len) {
    if (*e != NULL && len < (*e)->sze) return;
    p_entry *grown = realloc(*e, sizeof(p_entry) + (size_t)len + 1);
    if (grown == NULL) die("out of memory (an entry of %u bytes)", len);
    grown->sze = len + 1;
    *e = grown;
}

void copy_entry(p_entry **dst, const p_entry *src) {
    reserve(dst, src->len);
    memcpy((*dst)->data, src->data, src->len);
    (*dst)->data[src->len] = '\0';
    (*dst)->len = src->len;
}

p_entry *make_entry(const char *data, unsigned int len) {
    p_entry *e = NULL;
    reserve(&e, len);
    memcpy(e->data, data, len);
    e->data[len] = '\0';
    e->len = len;
    return e;
}

static void read_exactly(void *buf, size_t len, const char *what) {
    if (len && fread(buf, 1, len, stdin) != len) die("truncated input: %s", what);
}

static void read_entry(p_entry **e, uint32_t len, const char *what) {
    if (len > MAX_ITEM_SIZE) die("a %s of %u bytes is over the 1 GiB limit", what, len);
    reserve(e, len);
    read_exactly((*e)->data, len, what);
    (*e)->data[len] = '\0';
    (*e)->len = len;
}

int read_kv(p_entry **key, p_entry **val) {
    uint32_t len;
    size_t got = fread(&len, 1, sizeof len, stdin);
    if (got == 0) return 0;
    if (got != sizeof len) die("truncated input: key length");
    read_entry(key, len, "key");
    read_exactly(&len, sizeof len, "value length");
    read_entry(val, len, "value");
    return 1;
}

static void write_exactly(const void *buf, size_t len) {
    if (len && fwrite(buf, 1, len, stdout) != len) die("cannot write the output");
}

void write_num_prefix(int num) {
    uint32_t count = (uint32_t)num;
    if (num < 0) die("write_num_prefix(%d): a count cannot be negative", num);
    write_exactly(&count, sizeof count);
    pending_pairs = num;
    if (num == 0) fflush(stdout);
}

void write_kv(const p_entry *key, const p_entry *val) {
    uint32_t len = key->len;
    write_exactly(&len, sizeof len);
    write_exactly(key->data, key->len);
    len = val->len;
    write_exactly(&len, sizeof len);
    write_exactly(val->data, val->len);
    if (--pending_pairs <= 0) {
        pending_pairs = 0;
        fflush(stdout);
    }
}

/* Reads the decimal length and the separator after it from the block at *pos. */
static uint32_t block_length(const char *block, size_t size, size_t *pos, char sep) {
    uint64_t n = 0;
    size_t start = *pos;
    while (*pos < size && block[*pos] >= '0' && block[*pos] <= '9') {
        n = n * 10 + (uint64_t)(block[*pos] - '0');
        if (n > MAX_ITEM_SIZE) die("bad parameter block: a length is too large");
        (*pos)++;
    }
    if (*pos == start || *pos >= size || block[*pos] != sep)
        die("bad parameter block at byte %zu", start);
    (*pos)++;
    return (uint32_t)n;
}

static p_entry *block_field(const char *block, size_t size, size_t *pos) {
    uint32_t len = block_length(block, size, pos, ' ');
    if (size - *pos < (size_t)len + 1) die("bad parameter block: truncated field");
    p_entry *e = make_entry(block + *pos, len);
    *pos += (size_t)len + 1; /* the field and the separator after it */
    return e;
}

const disco_params *read_parameters(void) {
    char header[32];
    size_t n = 0;
    int c;
    while ((c = getchar()) != EOF && c != '\n') {
        if (n + 1 >= sizeof header) die("bad parameter header");
        header[n++] = (char)c;
    }
    header[n] = '\0';
    if (c != '\n') die("truncated input: parameter header");
    size_t pos = 0;
    size_t hsize = n + 1;
    header[n] = '\n';
    uint32_t total = block_length(header, hsize, &pos, '\n');

    disco_params *params = dxmalloc(sizeof *params);
    params->count = 0;
    params->keys = params->values = NULL;
    char *block = dxmalloc(total + 1);
    read_exactly(block, total, "parameter block");
    unsigned int cap = 0;
    pos = 0;
    while (pos < total) {
        if (params->count == cap) {
            cap = cap ? 2 * cap : 8;
            params->keys = realloc(params->keys, cap * sizeof *params->keys);
            params->values = realloc(params->values, cap * sizeof *params->values);
            if (params->keys == NULL || params->values == NULL) die("out of memory");
        }
        params->keys[params->count] = block_field(block, total, &pos);
        params->values[params->count] = block_field(block, total, &pos);
        params->count++;
    }
    free(block);
    last_params = params;
    return params;
}

const p_entry *disco_param_entry(const disco_params *params, const char *key) {
    if (params == NULL || key == NULL) return NULL;
    size_t len = strlen(key);
    /* The last of equal keys wins, as in a dict. */
    for (unsigned int i = params->count; i-- > 0;)
        if (params->keys[i]->len == len && memcmp(params->keys[i]->data, key, len) == 0)
            return params->values[i];
    return NULL;
}

const char *disco_param(const char *key) {
    const p_entry *e = disco_param_entry(last_params, key);
    return e ? e->data : NULL;
}

unsigned int disco_param_count(const disco_params *params) {
    return params ? params->count : 0;
}
