/*
 * bpe_vocab.h - a tiny valid CLIP vocabulary written from C (tests and the
 * fuzz target; tests/ref_clip_bpe.py makes a larger, trained one).
 */
#ifndef PV_TEST_BPE_VOCAB_H
#define PV_TEST_BPE_VOCAB_H

/* Write dir/vocab.json and dir/merges.txt: the 512 byte symbols
 * (bytes_to_unicode order, then with "</w>"), a few English merges ("t h",
 * "th e</w>", ...), "<|startoftext|>", "<|endoftext|>". Ids in openai's
 * order. Returns 0 or -1. */
int bpe_write_tiny_vocab(const char *dir);

#endif
