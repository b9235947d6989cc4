/*
 * labels.c - folder labels as small integers (cli room): the class of an
 * image by the ImageFolder convention (its folder's name), and a string
 * table with open addressing that numbers them in order of first sight.
 * `cluster` reports label mixes with it, `map` colours points by it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
/* The class of an image by the ImageFolder convention: its folder's name. */
const char *cli_folder_label(const char *path, size_t *len)
{
    const char *slash = strrchr(path, '/'), *start;
    if (!slash || slash == path) {
        *len = 0;
        return "";
    }
    start = slash;
    while (start > path && start[-1] != '/')
        start--;
    *len = (size_t)(slash - start);
    return start;
}

/* Labels as small integers: a string table with open addressing. */

size_t cli_label_id(cli_labels *L, const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    if ((L->n + 1) * 2 > L->cap) {
        size_t ncap = L->cap ? L->cap * 2 : 64;
        size_t *ns = calloc(ncap, sizeof *ns);
        char **nn = realloc(L->name, ncap * sizeof *nn);
        if (!ns || !nn) {
            free(ns);
            if (nn)
                L->name = nn;
            return SIZE_MAX;
        }
        L->name = nn;
        for (size_t i = 0; i < L->n; i++) {
            uint64_t g = 1469598103934665603ull;
            for (const char *p = L->name[i]; *p; p++)
                g = (g ^ (unsigned char)*p) * 1099511628211ull;
            size_t j = g & (ncap - 1);
            while (ns[j])
                j = (j + 1) & (ncap - 1);
            ns[j] = i + 1;
        }
        free(L->slot);
        L->slot = ns;
        L->cap = ncap;
    }
    size_t j = h & (L->cap - 1);
    while (L->slot[j]) {
        const char *t = L->name[L->slot[j] - 1];
        if (strlen(t) == len && memcmp(t, s, len) == 0)
            return L->slot[j] - 1;
        j = (j + 1) & (L->cap - 1);
    }
    if (!(L->name[L->n] = strndup(s, len)))
        return SIZE_MAX;
    L->slot[j] = L->n + 1;
    return L->n++;
}

void cli_labels_free(cli_labels *L)
{
    for (size_t i = 0; i < L->n; i++)
        free(L->name[i]);
    free(L->name);
    free(L->slot);
}

