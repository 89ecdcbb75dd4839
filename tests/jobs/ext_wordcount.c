/* A word count written as a Disco external program (library.md 10.5, 16.6).
 *
 * Started as "op map" or "op reduce" in ext.<stage>/ of the job home.  It first reads
 * the parameters: "<total length>\n" then items "<len> <key> <len> <value>\n".
 * Records are <uint32 len><key><uint32 len><value> in native byte order.
 *   map:    per input record, answer <uint32 count> and count (word, weight) pairs;
 *           weight is the "weight" parameter (default "1").  A value "FAIL" makes
 *           the program report "**<ERR>" and exit.
 *   reduce: sum the decimal values per key; at the end send one result list.
 * Each stage reports "**<MSG> ..." on stderr once.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_bytes(uint32_t len) {
    char *buf = malloc((size_t)len + 1);
    if (buf == NULL || fread(buf, 1, len, stdin) != len) {
        fprintf(stderr, "**<ERR> truncated input\n");
        exit(2);
    }
    buf[len] = '\0';
    return buf;
}

/* Reads one item length; returns 0 at the end of the input. */
static int read_len(uint32_t *len) { return fread(len, sizeof *len, 1, stdin) == 1; }

static void write_item(const char *data, uint32_t len) {
    fwrite(&len, sizeof len, 1, stdout);
    fwrite(data, 1, len, stdout);
}

static char weight[32] = "1";

static void read_params(void) {
    unsigned long total = 0;
    if (scanf("%lu", &total) != 1 || getchar() != '\n') {
        fprintf(stderr, "**<ERR> bad parameter header\n");
        exit(2);
    }
    char *block = read_bytes((uint32_t)total), *p = block, *end = block + total;
    while (p < end) {
        char *key, *value;
        unsigned long klen = strtoul(p, &key, 10), vlen;
        key++; /* the space */
        vlen = strtoul(key + klen + 1, &value, 10);
        value++;
        if (klen == 6 && strncmp(key, "weight", 6) == 0 && vlen < sizeof weight) {
            memcpy(weight, value, vlen);
            weight[vlen] = '\0';
        }
        p = value + vlen + 1; /* the newline */
    }
    free(block);
}

static int map(void) {
    uint32_t klen, vlen;
    long records = 0;
    while (read_len(&klen)) {
        free(read_bytes(klen));
        if (!read_len(&vlen)) return 2;
        char *value = read_bytes(vlen);
        if (strcmp(value, "FAIL") == 0) {
            fprintf(stderr, "**<ERR> the map got FAIL\n");
            return 1;
        }
        char **words = malloc((vlen / 2 + 1) * sizeof *words);
        uint32_t count = 0;
        for (char *w = strtok(value, " \t\r\n"); w; w = strtok(NULL, " \t\r\n")) words[count++] = w;
        fwrite(&count, sizeof count, 1, stdout);
        for (uint32_t i = 0; i < count; i++) {
            write_item(words[i], (uint32_t)strlen(words[i]));
            write_item(weight, (uint32_t)strlen(weight));
        }
        free(words);
        fflush(stdout);
        free(value);
        records++;
    }
    fprintf(stderr, "**<MSG> external map read %ld records\n", records);
    return 0;
}

struct entry { char *key; uint32_t klen; long sum; };

static int reduce(void) {
    struct entry *table = NULL;
    size_t n = 0, cap = 0;
    uint32_t klen, vlen;
    while (read_len(&klen)) {
        char *key = read_bytes(klen);
        if (!read_len(&vlen)) return 2;
        char *value = read_bytes(vlen);
        size_t i = 0;
        while (i < n && !(table[i].klen == klen && memcmp(table[i].key, key, klen) == 0)) i++;
        if (i == n) {
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                table = realloc(table, cap * sizeof *table);
            }
            table[n++] = (struct entry){key, klen, 0};
        } else {
            free(key);
        }
        table[i].sum += atol(value);
        free(value);
    }
    uint32_t count = (uint32_t)n;
    fwrite(&count, sizeof count, 1, stdout);
    for (size_t i = 0; i < n; i++) {
        char num[32];
        write_item(table[i].key, table[i].klen);
        write_item(num, (uint32_t)snprintf(num, sizeof num, "%ld", table[i].sum));
    }
    fflush(stdout);
    fprintf(stderr, "**<MSG> external reduce summed %zu keys\n", n);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) return 2;
    read_params();
    if (strcmp(argv[1], "map") == 0) return map();
    if (strcmp(argv[1], "reduce") == 0) return reduce();
    fprintf(stderr, "**<ERR> unknown mode %s\n", argv[1]);
    return 2;
}
