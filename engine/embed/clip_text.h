/*
 * clip_text.h - the text side of CLIP's tokenizer (clip_text.c): UTF-8 in,
 * cleaned code points out, and the pre-split into pieces. The pipeline and
 * the subset of CLIP's cleanup it does are described in clip_bpe.h.
 * Private to engine/embed.
 */
#ifndef PV_CLIP_TEXT_H
#define PV_CLIP_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Decode text (len bytes of UTF-8), unescape HTML twice, NFC, collapse and
 * strip white space, lower-case. *out (malloc'd, the caller frees; NULL
 * when *n is 0) holds *n code points. Returns 0, PV_EINVAL with *bad = the
 * byte offset of the first invalid UTF-8 sequence, or PV_ENOMEM. */
int clip_text_clean(const char *text, size_t len, uint32_t **out, size_t *n, size_t *bad);

/* The next piece of s[0..n) at or after *pos by CLIP's pre-split pattern
 * (without its special tokens): returns 1 and the piece as s[*start..*end),
 * with *pos = *end; 0 when none is left. */
int clip_text_next_piece(const uint32_t *s, size_t n, size_t *pos, size_t *start, size_t *end);

/* Encode one code point (a Unicode scalar value) as UTF-8 at out (4 bytes
 * of room); returns the byte count. */
size_t clip_text_utf8(uint32_t cp, uint8_t *out);

/* 1 if s[0..len) is valid UTF-8 (strict, as clip_text_clean wants it). */
int clip_text_utf8_valid(const char *s, size_t len);

#endif
