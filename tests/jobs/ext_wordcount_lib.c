/* A word count built on the shipped C helpers (disco/ext/disco.h).
 *
 * "op map": for each input record, one (word, weight) pair per word; weight is the
 *           "weight" parameter (default "1"); a value "FAIL" makes it die().
 * "op reduce": sums the decimal values per key, then sends one result list.
 * Each stage reports a message with msg().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "disco.h"

static int map(void) {
    const char *weight = disco_param("weight");
    p_entry *w = make_entry(weight ? weight : "1", weight ? (unsigned int)strlen(weight) : 1);
    p_entry *key = NULL, *val = NULL, *word = NULL;
    long records = 0;
    while (read_kv(&key, &val)) {
        if (strcmp(val->data, "FAIL") == 0) die("the map got %s", val->data);
        char **words = dxmalloc((val->len / 2 + 1) * sizeof *words);
        unsigned int count = 0;
        for (char *t = strtok(val->data, " \t\r\n"); t; t = strtok(NULL, " \t\r\n"))
            words[count++] = t;
        write_num_prefix((int)count);
        for (unsigned int i = 0; i < count; i++) {
            free(word);
            word = make_entry(words[i], (unsigned int)strlen(words[i]));
            write_kv(word, w);
        }
        free(words);
        records++;
    }
    msg("external map read %ld records, weight %s", records, w->data);
    return 0;
}

static int reduce(void) {
    p_entry **keys = NULL, *key = NULL, *val = NULL;
    long *sums = NULL;
    unsigned int n = 0, cap = 0;
    while (read_kv(&key, &val)) {
        unsigned int i = 0;
        while (i < n && !(keys[i]->len == key->len && memcmp(keys[i]->data, key->data, key->len) == 0)) i++;
        if (i == n) {
            if (n == cap) {
                cap = cap ? 2 * cap : 16;
                keys = realloc(keys, cap * sizeof *keys);
                sums = realloc(sums, cap * sizeof *sums);
                if (!keys || !sums) die("out of memory");
            }
            keys[n] = NULL;
            copy_entry(&keys[n], key);
            sums[n++] = 0;
        }
        sums[i] += atol(val->data);
    }
    write_num_prefix((int)n);
    p_entry *num = dxmalloc(sizeof(p_entry) + 32);
    num->sze = 32;
    for (unsigned int i = 0; i < n; i++) {
        num->len = (unsigned int)snprintf(num->data, num->sze, "%ld", sums[i]);
        write_kv(keys[i], num);
    }
    msg("external reduce summed %u keys", n);
    return 0;
}

int main(int argc, char **argv) {
    read_parameters();
    if (argc == 2 && strcmp(argv[1], "map") == 0) return map();
    if (argc == 2 && strcmp(argv[1], "reduce") == 0) return reduce();
    die("unknown mode %s", argc > 1 ? argv[1] : "(none)");
}
