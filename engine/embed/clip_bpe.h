/*
 * clip_bpe.h - CLIP's byte-level BPE tokenizer (openai/CLIP's
 * simple_tokenizer.py, clip.tokenize(truncate=True)), for text queries.
 *
 * encode = cleanup, pre-split, byte-level BPE:
 *  1. cleanup, in this order:
 *     - HTML character references, unescaped twice (CLIP calls
 *       html.unescape twice, so "&amp;amp;" becomes "&"). A subset of
 *       html.unescape: the named references &amp; &lt; &gt; &quot; &apos;
 *       &nbsp; (lower case, ';' required) and the numeric ones &#DDD; and
 *       &#xHHH; / &#XHHH; (';' required) whose value is a Unicode scalar
 *       value other than 0. Anything else (other names, no ';', &#0;, a
 *       surrogate or a value above U+10FFFF, which html.unescape turns into
 *       U+FFFD or a Windows-1252 character) stays as typed.
 *     - ftfy.fix_text, which CLIP runs first, is NOT done (ftfy is not in
 *       Debian 12, so there is no reference to test against): no mojibake
 *       repair, no uncurling of quotes, no fullwidth folding. Text that is
 *       already clean UTF-8, which is what a query is, is unaffected.
 *     - NFC (Unicode 14.0.0, UC_VERSION in unicode_tables.h, from Python
 *       3.11's unicodedata; Debian 12's python3-regex is Unicode 15.0, which
 *       differs from it only on code points new in 15.0).
 *     - runs of White_Space (the `regex` module's \s, which CLIP uses) become
 *       one space; then both ends are stripped of str.isspace() characters
 *       (which also counts U+001C..U+001F, as CLIP's str.strip() does: in
 *       the middle of the text those four are not space, at its ends they
 *       are).
 *     - full lower case as Python's str.lower(): U+0130 becomes "i" U+0307,
 *       and capital sigma becomes final sigma by the Final_Sigma rule.
 *  2. pre-split by CLIP's pattern
 *       <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|
 *       [\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+        (IGNORECASE)
 *     as a scanner (first matching alternative wins; IGNORECASE lets "'s"
 *     also match "'" U+017F), EXCEPT the two special-token alternatives:
 *     user text never yields the start or end token, so a query cannot
 *     inject control tokens; "<|endoftext|>" typed by a user is split as
 *     "<|", "endoftext", "|>" like any other characters.
 *  3. each piece's UTF-8 bytes through bytes_to_unicode, '</w>' on the last
 *     symbol, merged by rank (lowest first; all occurrences, left to right;
 *     repeat), symbols to ids through the vocabulary.
 * tests/ref_clip_bpe.py implements the same in Python and the tests compare.
 *
 * Files: vocab.json and merges.txt as Hugging Face ships them with
 * openai/clip-vit-base-patch32 (49,408 tokens, 48,894 merges).
 *
 * Thread and lifetime rules: a loaded tokenizer is read-only; any number of
 * threads may call clip_bpe_encode on it at once (each call allocates its
 * own scratch memory). clip_bpe_free when no call is running.
 */
#ifndef PV_CLIP_BPE_H
#define PV_CLIP_BPE_H

#include <stddef.h>
#include <stdint.h>

typedef struct clip_bpe clip_bpe;

#define CLIP_BPE_MAX_FILE (64u << 20)   /* bytes, each file */
#define CLIP_BPE_MAX_TOKENS (1u << 20)  /* vocabulary entries, and merges */
#define CLIP_BPE_MAX_ID ((1 << 24) - 1) /* largest id accepted in vocab.json */
#define CLIP_BPE_MAX_TEXT (1u << 20)    /* bytes of text clip_bpe_encode takes */

/* Load vocab.json (a JSON object token -> id; ids distinct integers in
 * 0..CLIP_BPE_MAX_ID) and merges.txt (an optional first line starting with
 * "#version", then one "a b" pair per line, one space; rank = line order;
 * blank lines only at the end; a '\r' before '\n' is ignored). Every byte
 * symbol (bytes_to_unicode, 256 of them) and its "</w>" form must be in the
 * vocabulary, and so must "<|startoftext|>" and "<|endoftext|>" (their ids
 * are looked up by string). A merge whose parts or result is not in the
 * vocabulary, or that repeats an earlier pair, is refused.
 * The files are untrusted: sizes are bounded (CLIP_BPE_MAX_*).
 * Returns 0 and *out, or PV_EIO (a file cannot be read), PV_ECORRUPT (a
 * file is malformed or over a limit), PV_ENOMEM, PV_EINVAL (NULL
 * arguments), with err naming the file and the reason (and the line, for
 * merges.txt). On failure *out is NULL. */
int clip_bpe_load(const char *vocab_path, const char *merges_path, clip_bpe **out, char *err,
                  size_t errlen);

/* Tokenize text (len bytes of UTF-8; NUL bytes are ordinary characters):
 * ids[0] = the start token, the BPE ids, the end token; at most max ids
 * (max >= 2; CLIP uses 77): when longer, the start token, the first max - 2
 * BPE ids and the end token (clip.tokenize(truncate=True)). *n = the count.
 * The ids are not padded. Returns 0, PV_EINVAL (invalid UTF-8, err naming
 * the byte offset; text longer than CLIP_BPE_MAX_TEXT; max < 2; NULL
 * arguments) or PV_ENOMEM. Time is O(n log n) in the text; scratch memory
 * about 100 bytes per byte of its longest piece (a run of letters or of
 * punctuation), so about 100 MB for a 1 MiB word. */
int clip_bpe_encode(const clip_bpe *b, const char *text, size_t len, int32_t *ids, size_t max,
                    size_t *n, char *err, size_t errlen);

/* The largest id in the vocabulary plus one. */
int32_t clip_bpe_vocab_size(const clip_bpe *b);

/* Free; NULL is fine. */
void clip_bpe_free(clip_bpe *b);

#endif
