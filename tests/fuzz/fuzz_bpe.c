/*
 * fuzz_bpe.c - libFuzzer target over CLIP's tokenizer
 * (engine/embed/clip_bpe.c): query text, vocab.json and merges.txt are all
 * untrusted. No input may crash it, leak, read out of bounds, or give ids
 * that break the contract: start token first, end token last, neither in
 * between, every id below clip_bpe_vocab_size, at most max of them.
 *
 * At start: the tiny vocabulary of tests/bpe_vocab.c (512 byte symbols,
 * 19 merges) written to a temporary folder and loaded. Each input:
 *
 *   byte 0      mode = byte % 3; for modes 1 and 2, bit 3 picks a splice;
 *               for mode 0, max = 2 + (byte / 3) % 80
 *   mode 0      the rest is the text to encode
 *   mode 1, 2   the rest is vocab.json (1) or merges.txt (2), loaded with
 *               the other file of the tiny vocabulary; spliced: bytes 1-2
 *               an offset (little-endian, mod the valid file's length),
 *               byte 3 how many bytes to cut there, the rest inserted, so
 *               near-valid files reach past the first check. A file that
 *               loads then encodes a fixed sentence.
 *
 * Build: CC=clang cmake -DPV_FUZZ=ON (see scripts/ci/fuzz.sh).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bpe_vocab.h"
#include "clip_bpe.h"
#include "pixvec.h"

#define MAXIDS 81

static char dir[64], vocab_path[128], merges_path[128], fz_path[128];
static char *valid[2];
static size_t valid_len[2];
static clip_bpe *tiny;

static void die(const char *what)
{
    fprintf(stderr, "fuzz_bpe: %s\n", what);
    abort();
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        die("cannot read the tiny vocabulary");
    char *b = malloc(1 << 20);
    if (!b)
        die("out of memory");
    *len = fread(b, 1, 1 << 20, f);
    fclose(f);
    return b;
}

static void cleanup(void)
{
    unlink(vocab_path);
    unlink(merges_path);
    unlink(fz_path);
    rmdir(dir);
    clip_bpe_free(tiny);
    free(valid[0]);
    free(valid[1]);
}

static void init(void)
{
    char err[256];
    snprintf(dir, sizeof dir, "/tmp/fuzz_bpe.XXXXXX");
    if (!mkdtemp(dir) || bpe_write_tiny_vocab(dir) != 0)
        die("cannot write the tiny vocabulary");
    snprintf(vocab_path, sizeof vocab_path, "%s/vocab.json", dir);
    snprintf(merges_path, sizeof merges_path, "%s/merges.txt", dir);
    snprintf(fz_path, sizeof fz_path, "%s/fuzzed", dir);
    if (clip_bpe_load(vocab_path, merges_path, &tiny, err, sizeof err) != 0)
        die(err);
    valid[0] = slurp(vocab_path, &valid_len[0]);
    valid[1] = slurp(merges_path, &valid_len[1]);
    atexit(cleanup);
}

/* Encode and check the contract. */
static void check_encode(const clip_bpe *b, const uint8_t *text, size_t len, size_t max)
{
    int32_t ids[MAXIDS], ids2[MAXIDS];
    size_t n = 0, n2 = 0;
    char err[256] = "";
    int rc = clip_bpe_encode(b, (const char *)text, len, ids, max, &n, err, sizeof err);
    if (rc == PV_EINVAL) {
        if (!strstr(err, "byte offset"))
            die("invalid text without its offset");
        return;
    }
    if (rc != 0)
        die("encode failed");
    int32_t vs = clip_bpe_vocab_size(b);
    if (n < 2 || n > max || ids[0] == ids[n - 1])
        die("bad count or start/end");
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vs ||
            (i > 0 && i + 1 < n && (ids[i] == ids[0] || ids[i] == ids[n - 1])))
            die("an id out of range, or a control token inside");
    /* deterministic, and a shorter cut is a prefix */
    if (clip_bpe_encode(b, (const char *)text, len, ids2, max > 3 ? max - 1 : max, &n2, NULL, 0))
        die("second encode failed");
    if (n2 > 2 && memcmp(ids, ids2, (n2 - 1) * sizeof *ids) != 0)
        die("a shorter max is not a prefix");
}

static void fuzz_file(int which, const uint8_t *data, size_t size)
{
    int splice = data[0] & 8;
    data++;
    size--;
    FILE *f = fopen(fz_path, "wb");
    if (!f)
        die("cannot write the fuzzed file");
    if (splice && size >= 3) {
        size_t off = (size_t)(data[0] | data[1] << 8) % (valid_len[which] + 1);
        size_t cut = data[2];
        if (cut > valid_len[which] - off)
            cut = valid_len[which] - off;
        fwrite(valid[which], 1, off, f);
        fwrite(data + 3, 1, size - 3, f);
        fwrite(valid[which] + off + cut, 1, valid_len[which] - off - cut, f);
    } else {
        fwrite(data, 1, size, f);
    }
    if (fclose(f) != 0)
        die("cannot write the fuzzed file");
    clip_bpe *b = NULL;
    char err[512] = "";
    int rc = clip_bpe_load(which ? vocab_path : fz_path, which ? fz_path : merges_path, &b, err,
                           sizeof err);
    if (rc != 0) {
        if (b || (rc != PV_ECORRUPT && rc != PV_ENOMEM))
            die("a refusal with *out set, or an unexpected code");
        /* named: the fuzzed file, or the valid one it no longer fits */
        if (rc == PV_ECORRUPT && strncmp(err, dir, strlen(dir)) != 0)
            die("a refusal without the file's name");
        return;
    }
    static const char text[] =
        "The photo of the cat in the caf\xc3\xa9, it's 12 th\xc3\xa9 <|endoftext|>";
    check_encode(b, (const uint8_t *)text, sizeof text - 1, 77);
    clip_bpe_free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        init();
        ready = 1;
    }
    if (size == 0)
        return 0;
    int mode = data[0] % 3;
    if (mode == 0)
        check_encode(tiny, data + 1, size - 1, 2 + (size_t)(data[0] / 3) % 80);
    else
        fuzz_file(mode - 1, data, size);
    return 0;
}
