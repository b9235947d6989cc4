/*
 * vit.h - the transformer encoder shared by CLIP's two towers, DINOv2 and
 * ViT-MAE (engine/embed room).
 *
 * One pre-LayerNorm encoder: L blocks of
 *     h = x + ls1 * out(attention(LN1(x)))
 *     x = h + ls2 * fc2(act(fc1(LN2(h))))
 * with multi-head attention softmax(q k^T / sqrt(D/H)) v (causal for CLIP's
 * text tower), act QuickGELU (x * sigmoid(1.702 x), CLIP) or GELU (erf),
 * and ls1, ls2 DINOv2's layer scale (absent elsewhere). Weights are
 * row-major [out, in] as PyTorch's nn.Linear keeps them (y = x W^T + b), so
 * they are used where they lie in the mapped checkpoint. Every matrix
 * product is one OpenBLAS sgemm over all tokens of all sequences of a
 * batch (M = tokens * batch rows); attention is one pair of small sgemms
 * per (sequence, head).
 *
 * Sequences of a batch never mix: each row depends only on its own
 * sequence's rows, so a batch of n gives the same vectors as n batches of 1
 * (up to sgemm's summation order).
 */
#ifndef PV_VIT_H
#define PV_VIT_H

#include <stddef.h>

enum { VIT_QUICK_GELU, VIT_GELU };

typedef struct vit_layer {
    const float *ln1_w, *ln1_b;
    const float *q_w, *q_b, *k_w, *k_b, *v_w, *v_b; /* [D, D], [D] */
    const float *o_w, *o_b;                         /* [D, D], [D] */
    const float *ln2_w, *ln2_b;
    const float *fc1_w, *fc1_b; /* [F, D], [F] */
    const float *fc2_w, *fc2_b; /* [D, F], [D] */
    const float *ls1, *ls2;     /* [D] layer scale, or NULL */
} vit_layer;

typedef struct vit_encoder {
    int d, heads, ff, nlayers; /* width, heads, MLP width, blocks */
    float eps;                 /* LayerNorm epsilon */
    int act;                   /* VIT_QUICK_GELU or VIT_GELU */
    vit_layer *layers;         /* nlayers */
} vit_encoder;

/* Run the encoder in place on x: nseq sequences of t tokens, rows of d
 * floats (x holds nseq * t * d). causal: token i attends to tokens <= i.
 * keep: VIT_KEEP_ALL, or the one row of each sequence its caller reads,
 * VIT_KEEP_FIRST (a class token) or VIT_KEEP_LAST (CLIP's end token,
 * causal): the last block computes only that row past the keys and values
 * (the other rows are left stale), 1/L of the work saved. PV_ENOMEM, or 0. */
enum { VIT_KEEP_ALL, VIT_KEEP_FIRST, VIT_KEEP_LAST };
int vit_encode(const vit_encoder *e, float *x, size_t nseq, size_t t, int causal, int keep);

/* The activation (VIT_QUICK_GELU or VIT_GELU) of n floats in place, and
 * x[i] = exp(x[i] - shift) returning their sum (softmax): vectorised for
 * the ISA index/vec.c chose (vec_isa_active), relative error about 1e-6. */
void vit_activate(float *x, size_t n, int act);
float vit_exp_sum(float *x, size_t n, float shift);

/* A buffer of at least n floats that belongs to the calling thread and is
 * kept for its next call (freed when the thread ends): one per slot, so
 * nested users take different slots. NULL when memory runs out. */
enum { VIT_SLOT_ENCODER, VIT_SLOT_TOWER, VIT_SLOT_INPUT, VIT_SLOTS };
float *vit_scratch(int slot, size_t n);

/* LayerNorm of one row of n floats into out (may equal x). */
void vit_layernorm(const float *x, size_t n, const float *w, const float *b, float eps,
                   float *out);

/* PyTorch's F.interpolate(mode="bicubic", align_corners=False, size=(oh, ow))
 * of a [ih, iw, d] grid of d-vectors (row-major, vectors contiguous) into
 * out [oh, ow, d]: cubic convolution with A = -0.75, taps clamped at the
 * border, no antialiasing. Used to fit stored position embeddings to the
 * input's patch grid. */
void vit_interp_bicubic(const float *in, int ih, int iw, int d, float *out, int oh, int ow);

#endif
