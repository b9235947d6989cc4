/*
 * names.c - the one escape for file names in every output (names.h has the
 * rule). A name is bytes; the database keeps and matches those bytes, and
 * only printing picks a form: the name itself when it is plain, else a
 * git-style quoted form in which every byte that is not printable UTF-8
 * has a two-character or \xHH escape. The quoted form is at most 4 bytes
 * per input byte plus the two quotes, so it is built in one allocation.
 *
 * The UTF-8 check is RFC 3629's (Table 3-7 of the Unicode standard): lead
 * bytes C2..F4, the second byte's range narrowed after E0, ED, F0 and F4,
 * which refuses overlong forms, surrogates and code points past U+10FFFF.
 */
#include "names.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

size_t cli_utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0], lo = 0x80, hi = 0xbf;
    size_t need, k;

    if (n == 0 || c == 0)
        return 0;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        need = 1;
    else if (c >= 0xe0 && c <= 0xef)
        need = 2;
    else if (c >= 0xf0 && c <= 0xf4)
        need = 3;
    else
        return 0; /* a continuation byte, C0, C1 or F5..FF */
    if (n < need + 1)
        return 0;
    if (c == 0xe0)
        lo = 0xa0; /* below: overlong */
    else if (c == 0xed)
        hi = 0x9f; /* above: surrogates */
    else if (c == 0xf0)
        lo = 0x90; /* below: overlong */
    else if (c == 0xf4)
        hi = 0x8f; /* above: past U+10FFFF */
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (k = 2; k <= need; k++)
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    return need + 1;
}

/* The valid UTF-8 character at s in a NUL-terminated string: a NUL is no
 * continuation byte, so no byte past the end is read. */
static size_t char_len(const char *s)
{
    return cli_utf8_len((const unsigned char *)s, 4);
}

int cli_utf8_valid(const char *s)
{
    size_t k;

    for (; *s; s += k)
        if ((k = char_len(s)) == 0)
            return 0;
    return 1;
}

static int is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

int cli_name_is_plain(const char *name)
{
    const char *s = name;
    size_t k;

    if (name == NULL || name[0] == '"')
        return 0;
    for (; *s; s += k)
        if (is_control((unsigned char)*s) || (k = char_len(s)) == 0)
            return 0;
    return 1;
}

/* The quoted form of s (names.h) in a new buffer: at most 4 bytes for
 * each byte of s (\xHH), and the two quotes. NULL out of memory. */
static char *quoted(const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(s), k;
    char *out, *o;

    if (n > (SIZE_MAX - 3) / 4 || (out = malloc(4 * n + 3)) == NULL)
        return NULL;
    o = out;
    *o++ = '"';
    for (; *s; s += k) {
        unsigned char c = (unsigned char)*s;
        const char *two = NULL;
        switch (c) {
        case '\\': two = "\\\\"; break;
        case '"': two = "\\\""; break;
        case '\t': two = "\\t"; break;
        case '\n': two = "\\n"; break;
        case '\r': two = "\\r"; break;
        default: break;
        }
        k = char_len(s);
        if (two != NULL) {
            memcpy(o, two, 2);
            o += 2;
        } else if (k == 0 || is_control(c)) {
            k = 1;
            *o++ = '\\';
            *o++ = 'x';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        } else {
            memcpy(o, s, k);
            o += k;
        }
    }
    *o++ = '"';
    *o = '\0';
    return out;
}

char *cli_name_text(const char *name)
{
    if (name == NULL)
        name = "";
    return cli_name_is_plain(name) ? strdup(name) : quoted(name);
}

void cli_name_print(FILE *f, const char *name)
{
    char *t;

    if (cli_name_is_plain(name)) {
        fputs(name, f);
        return;
    }
    t = cli_name_text(name);
    /* Out of memory: a mark rather than bytes that could break a line. */
    fputs(t ? t : "\"?\"", f);
    free(t);
}

json_t *cli_name_json(const char *name)
{
    json_t *j;
    char *t;

    if (name == NULL)
        name = "";
    if (name[0] != '"' && cli_utf8_valid(name))
        return json_string(name);
    t = quoted(name);
    j = t ? json_string(t) : NULL;
    free(t);
    return j;
}

static int hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int cli_name_parse(const char *s, size_t len, char **out)
{
    char *o = NULL, *w;
    size_t i;
    int rc = -1;

    *out = NULL;
    if (len == 0 || s[0] != '"') {
        if (memchr(s, '\0', len) != NULL)
            return -1;
        if ((o = malloc(len + 1)) == NULL)
            return -2;
        memcpy(o, s, len);
        o[len] = '\0';
        *out = o;
        return 0;
    }
    if (len < 2 || s[len - 1] != '"')
        return -1;
    if ((o = malloc(len)) == NULL)
        return -2;
    w = o;
    for (i = 1; i < len - 1; i++) {
        char c = s[i];
        int hi, lo;
        if (c == '"' || c == '\0')
            goto done; /* an unescaped quote inside */
        if (c != '\\') {
            *w++ = c;
            continue;
        }
        if (++i >= len - 1)
            goto done; /* a backslash escaping the closing quote */
        switch (s[i]) {
        case '\\': *w++ = '\\'; break;
        case '"': *w++ = '"'; break;
        case 't': *w++ = '\t'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 'x':
            if (i + 2 > len - 2 || /* both digits before the quote */
                (hi = hex_val(s[i + 1])) < 0 || (lo = hex_val(s[i + 2])) < 0 ||
                (hi | lo) == 0)
                goto done;
            *w++ = (char)(hi << 4 | lo);
            i += 2;
            break;
        default:
            goto done;
        }
    }
    *w = '\0';
    *out = o;
    o = NULL;
    rc = 0;
done:
    free(o);
    return rc;
}
