/*
 * embed.h - the embedder interface (engine/embed room).
 *
 * An embedder is a small vtable: a name, a dimension, the input size it
 * wants from the decoder, and embed(batch of images) -> float vectors. The
 * ingest pipeline calls embed() from several worker threads at once on the
 * same embedder, so its state must be read-only after creation.
 * Outputs are unit length (L2), or all zeros for an image with no contrast.
 * An image whose vector cannot be made fails alone, with its own status
 * in the call's per-image array: a model whose weights are finite can
 * still overflow on some images (a black one, a bright one) and give NaN
 * or Inf there, and the other images of the batch are fine.
 */
#ifndef PV_EMBED_H
#define PV_EMBED_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "img.h"

typedef struct embedder embedder;

typedef struct embedder_ops {
    const char *name;
    /* Embed n decoded images into out (n * dim floats). rcs[i] (n ints)
     * gets image i's own status: 0, or PV_EINVAL (channels other than the
     * embedder's), PV_ENUMERIC (its vector came out with a NaN or Inf), or
     * an image-size error from resizing; a failed image's dim floats in out
     * are zeros, and never affect the others'. Returns 0 when the call ran,
     * whatever the rcs say; a PV_E* code (PV_ENOMEM) when it could not run
     * at all, with every rcs[i] set to that code. */
    int (*embed)(const embedder *e, const img *imgs, size_t n, float *out, int *rcs);
    void (*destroy)(embedder *e);
    /* NULL, or a finer similarity of two stored vectors than their cosine
     * (photo: an aligned comparison under zoom, rotation and mirror). With
     * it, cosine only finds candidates (>= candidate_cosine) and this
     * score decides: `dups` keeps the pairs at or above its threshold and
     * `query` ranks by it. Symmetric; in [-1, 1]; reads untrusted vectors
     * (a damaged record) without going out of bounds. */
    float (*pair_score)(const embedder *e, const float *a, const float *b);
    /* NULL, or the vector of a text query in the images' space (clip's
     * text tower): len bytes of UTF-8 into out (dim floats, unit length).
     * 0, or a PV_E* code with a message in err (PV_EINVAL: not UTF-8). */
    int (*embed_text)(const embedder *e, const char *text, size_t len, float *out, char *err,
                      size_t errlen);
} embedder_ops;

struct embedder {
    const embedder_ops *ops;
    uint32_t dim;
    uint32_t channels;        /* what the decoder should produce: 1 or 3 */
    uint32_t in_w, in_h;      /* smallest decoded size that is enough */
    char desc[96];            /* "pixels 28x28 grey" */
    char model[512];          /* weight file, absolute path ("" if none) */
    uint8_t model_hash[16];   /* XXH3-128 of its bytes */
    int blas_heavy;           /* embed() is mostly sgemm: one BLAS thread per worker */
    uint32_t batch;           /* images per embed() call it runs best at (one
                               * forward pass); 0: the ingest's default (8) */
    int png_whole;            /* resizes as Pillow does (vit): a PNG is decoded whole,
                               * not area-reduced to multiples of in_w x in_h */
    uint32_t flags;           /* EMBED_* options it was made with (stored in meta) */
    float dups_threshold;     /* default `dups` threshold (bench/README.md) */
    float candidate_cosine;   /* with pair_score: the cosine that makes a candidate */
    void *state;
};

/* Options stored with a database (meta emb_flags). */
#define EMBED_NO_MIRROR 1u /* photo: a mirror image is not a near-duplicate */
#define EMBED_POOL_SUM 2u  /* vitmae: the sum over all tokens, not the class token */

/* Make the embedder called name with its parameters (size 0 = default;
 * model: a weight file for embedders that have one, NULL = the default;
 * flags: EMBED_*, only for an embedder that has them). */
int embed_create(const char *name, uint32_t size, uint32_t rgb, const char *model,
                 uint32_t flags, embedder **out, char *err, size_t errlen);
void embed_destroy(embedder *e); /* NULL is fine */

/* One embedder per file; embed_create dispatches by name. */
int embed_pixels_create(uint32_t size, uint32_t rgb, embedder **out,
                        char *err, size_t errlen);
int embed_cnn_create(const char *model, embedder **out, char *err, size_t errlen);
int embed_photo_create(uint32_t flags, embedder **out, char *err, size_t errlen);
/* clip, dinov2, vitmae (embed_vit.c): model is a Hugging Face checkpoint
 * directory; flags EMBED_POOL_SUM (vitmae). */
int embed_vit_create(const char *name, const char *model, uint32_t flags, embedder **out,
                     char *err, size_t errlen);
/* external (embed_external.c): vectors imported from elsewhere, of dim
 * values (embed_create's size); no image model, no text tower. */
#define EMBED_EXTERNAL_NAME "external"
int embed_external_create(uint32_t dim, embedder **out, char *err, size_t errlen);
static inline int embed_is_external(const embedder *e)
{
    return e && e->ops->name && strcmp(e->ops->name, EMBED_EXTERNAL_NAME) == 0;
}
/* What pv_add and pv_query_image say on such a database. */
#define EMBED_EXTERNAL_MSG                                                                         \
    "this database holds vectors imported from elsewhere; query it with --vector"

/* Default `dups` thresholds, from bench/README.md's measurements (31
 * photographs x 7 variants, and Fashion-MNIST's nearest-neighbour scores).
 * pixels: 0.98 keeps precision 1.0 on the photographs and finds their
 * re-encoded, resized, brightened, blurred and grey copies (cosine >= 0.997)
 * but not crops or watermarks (those need 0.81, which flags most of
 * Fashion-MNIST); 0.95 would flag 37 % of Fashion-MNIST's distinct items,
 * 0.98 flags 6.8 %. cnn: 0.90, precision 0.99 and recall 0.64 on the
 * photographs (best F1, 0.80, is at 0.87 with precision 0.86): a scan
 * before training would rather miss a far variant than merge distinct
 * images. */
#define EMBED_PIXELS_DUPS_THRESHOLD 0.98f
#define EMBED_CNN_DUPS_THRESHOLD 0.90f
/* photo: the pair score (aligned correlation) that makes a near-duplicate,
 * and the cosine of whole vectors that makes a pair worth scoring
 * (bench/README.md, "Near-duplicate photographs"): 0.85 has the best F1 on
 * the bench's set (0.985, precision 0.998) and keeps precision >= 0.99
 * when each photograph has only 3 to 5 variants; at 0.80 recall is 0.99 but
 * star clusters and frames of one scene merge (precision 0.97 with 3 to 5
 * variants); at 0.90 contrast-stretched dark photos drop out (recall 0.92).
 * A candidate floor of 0.4 keeps 99 % of centred 80 % crops and 87-100 %
 * of crops off the centre as candidates (0.5: 63-87 % of those). */
#define EMBED_PHOTO_DUPS_THRESHOLD 0.85f
#define EMBED_PHOTO_CANDIDATE_COSINE 0.4f
/* clip, dinov2, vitmae: not measured (no registry here ships their
 * weights; bench/README.md); 0.95 is where CLIP cosines of re-encoded and
 * resized copies lie in published near-duplicate use (rclip, immich). */
#define EMBED_VIT_DUPS_THRESHOLD 0.95f

/* Where the cnn embedder's default weights are installed
 * (scripts/fetch_model.sh). */
#define EMBED_CNN_DEFAULT_MODEL "/usr/local/share/pixvec/mobilenet_v2_nsfwjs.safetensors"

#endif
