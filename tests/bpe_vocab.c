/*
 * bpe_vocab.c - see bpe_vocab.h. The byte symbols are built here from the
 * rule of bytes_to_unicode, not from the tokenizer, so a slip in one is
 * caught by the other.
 */
#include "bpe_vocab.h"

#include <stdio.h>
#include <string.h>

static const char *const merges[][2] = {
    {"t", "h"},
    {"th", "e</w>"},
    {"a", "n"},
    {"i", "n"},
    {"in", "g</w>"},
    {"an", "d</w>"},
    {"o", "f</w>"},
    {"c", "a"},
    {"ca", "t</w>"},
    {"th", "e"},
    {"o", "n</w>"},
    {"p", "h"},
    {"ph", "o"},
    {"pho", "t"},
    {"phot", "o</w>"},
    {"\xc3\x83", "\xc2\xa9</w>"},
    {"\xc4\xa0", "\xc4\xa0"},
    {"1", "2"},
    {"'", "s</w>"},
};

/* bytes_to_unicode(v) as UTF-8 into s; returns its length. */
static size_t byte_symbol(unsigned v, char *s)
{
    unsigned cp;
    if ((v >= 0x21 && v <= 0x7E) || (v >= 0xA1 && v <= 0xAC) || v >= 0xAE) {
        cp = v;
    } else { /* the 68 others, counted in byte order, from U+0100 */
        unsigned k = 0;
        for (unsigned u = 0; u < v; u++)
            k += !((u >= 0x21 && u <= 0x7E) || (u >= 0xA1 && u <= 0xAC) || u >= 0xAE);
        cp = 0x100 + k;
    }
    if (cp < 0x80) {
        s[0] = (char)cp;
        return 1;
    }
    s[0] = (char)(0xC0 | cp >> 6);
    s[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
}

static void put_json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

int bpe_write_tiny_vocab(const char *dir)
{
    char path[4096];
    unsigned order[256], n = 0;
    for (unsigned v = 0; v < 256; v++) /* openai's order: kept bytes first */
        if ((v >= 0x21 && v <= 0x7E) || (v >= 0xA1 && v <= 0xAC) || v >= 0xAE)
            order[n++] = v;
    for (unsigned v = 0; v < 256; v++)
        if (!((v >= 0x21 && v <= 0x7E) || (v >= 0xA1 && v <= 0xAC) || v >= 0xAE))
            order[n++] = v;
    snprintf(path, sizeof path, "%s/vocab.json", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int id = 0;
    fputc('{', f);
    for (int eow = 0; eow < 2; eow++)
        for (unsigned i = 0; i < 256; i++) {
            char s[8];
            size_t k = byte_symbol(order[i], s);
            strcpy(s + k, eow ? "</w>" : "");
            put_json_string(f, s);
            fprintf(f, ": %d, ", id++);
        }
    for (size_t m = 0; m < sizeof merges / sizeof merges[0]; m++) {
        char s[64];
        snprintf(s, sizeof s, "%s%s", merges[m][0], merges[m][1]);
        put_json_string(f, s);
        fprintf(f, ": %d, ", id++);
    }
    fprintf(f, "\"<|startoftext|>\": %d, \"<|endoftext|>\": %d}\n", id, id + 1);
    if (fclose(f) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/merges.txt", dir);
    if (!(f = fopen(path, "w")))
        return -1;
    fputs("#version: 0.2\n", f);
    for (size_t m = 0; m < sizeof merges / sizeof merges[0]; m++)
        fprintf(f, "%s %s\n", merges[m][0], merges[m][1]);
    return fclose(f) == 0 ? 0 : -1;
}
