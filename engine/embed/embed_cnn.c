/*
 * embed_cnn.c - the `cnn` embedder: MobileNetV2's 1280 pooled features
 * (engine/embed/cnn.c), L2-normalised.
 *
 * Preprocessing follows the code that trained and ships the weights
 * (nsfwjs 4.4.0: divide by 255, resize to 224 x 224 with no crop): the
 * image, RGB, is area-averaged to 224 x 224 (the whole image, squashed, no
 * crop), scaled to [0, 1]. Area averaging rather than nsfwjs' bilinear
 * resize: downscaling a photo by 10x or more bilinearly samples a few
 * pixels and aliases.
 *
 * The network's buffers (cnn_work, about 14 MB per image of the batch) are
 * kept per thread: embed() is called from several ingest workers at once
 * on the same embedder, whose state (the folded weights) is read-only.
 *
 * Each image's vector is checked after the forward pass: the loader
 * refuses NaN and Inf weights, but finite ones can still overflow on some
 * inputs (a large weight times a bright pixel, then Inf - Inf is NaN), so
 * an image whose features hold a NaN or Inf fails alone with PV_ENUMERIC.
 * Images of a batch never mix in the network (every layer maps one image's
 * rows to the same image's rows), so the others' vectors stand.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cnn.h"
#include "embed.h"
#include "pixvec.h"
#include "pv_util.h"
#include "vec.h"

typedef struct thread_work {
    cnn_work *w;
    uint8_t *small; /* one image resized to 224 x 224 x 3 */
    float *in;      /* a batch of network inputs */
    size_t cap;     /* images per batch the buffers hold */
} thread_work;

static pthread_key_t work_key;
static pthread_once_t work_once = PTHREAD_ONCE_INIT;

static void work_free(void *p)
{
    thread_work *t = p;
    if (t) {
        cnn_work_free(t->w);
        free(t->small);
        free(t->in);
        free(t);
    }
}

static void work_key_make(void) { (void)pthread_key_create(&work_key, work_free); }

/* This thread's buffers for batches of n images (NULL: out of memory). */
static thread_work *thread_work_get(size_t n)
{
    thread_work *t;
    pthread_once(&work_once, work_key_make);
    t = pthread_getspecific(work_key);
    if (!t) {
        if (!(t = calloc(1, sizeof *t)))
            return NULL;
        if (pthread_setspecific(work_key, t) != 0) {
            free(t);
            return NULL;
        }
    }
    if (t->cap < n) {
        const size_t px = (size_t)CNN_SIDE * CNN_SIDE * 3;
        cnn_work_free(t->w);
        free(t->small);
        free(t->in);
        t->w = cnn_work_new(n);
        t->small = pv_alloc_array(px, 1);
        t->in = pv_alloc_array(n * px, sizeof(float));
        t->cap = t->w && t->small && t->in ? n : 0;
    }
    return t->cap >= n ? t : NULL;
}

#define CNN_BATCH 8u /* images per forward pass */

static int cnn_embed(const embedder *e, const img *imgs, size_t n, float *out, int *rcs)
{
    const cnn *m = e->state;
    const size_t px = (size_t)CNN_SIDE * CNN_SIDE * 3;
    const size_t batch = n < CNN_BATCH ? n : CNN_BATCH;
    thread_work *tw = thread_work_get(batch);
    int rc = tw ? PV_OK : PV_ENOMEM;
    uint8_t *small = tw ? tw->small : NULL;
    float *in = tw ? tw->in : NULL;
    for (size_t b = 0; b < n && rc == 0; b += batch) {
        const size_t k = n - b < batch ? n - b : batch;
        for (size_t i = 0; i < k; i++) {
            const img *im = &imgs[b + i];
            int *r = &rcs[b + i];
            *r = im->channels != 3 ? PV_EINVAL
                                   : img_resize_area(im->px, im->w, im->h, 3, small,
                                                     CNN_SIDE, CNN_SIDE);
            /* a failed image still takes its place in the batch, as zeros */
            for (size_t p = 0; p < px; p++)
                in[i * px + p] = *r == 0 ? small[p] * (1.0f / 255.0f) : 0.0f;
        }
        rc = cnn_forward(m, tw->w, in, k, out + b * MNV2_FEATURES);
        for (size_t i = 0; i < k && rc == 0; i++) {
            float *v = out + (b + i) * MNV2_FEATURES;
            if (rcs[b + i] == 0 && isnan(vec_normalize(v, MNV2_FEATURES)))
                rcs[b + i] = PV_ENUMERIC;
            if (rcs[b + i] != 0)
                memset(v, 0, MNV2_FEATURES * sizeof(float));
        }
    }
    if (rc != 0) /* the call could not run: no image has a vector */
        for (size_t i = 0; i < n; i++)
            rcs[i] = rc;
    return rc;
}

static void cnn_destroy(embedder *e)
{
    cnn_free(e->state);
    free(e);
}

static const embedder_ops CNN_OPS = {"cnn", cnn_embed, cnn_destroy, NULL, NULL};

int embed_cnn_create(const char *model, embedder **out, char *err, size_t errlen)
{
    const char *path = model && model[0] ? model : EMBED_CNN_DEFAULT_MODEL;
    embedder *e = calloc(1, sizeof *e);
    char abs[PATH_MAX];
    cnn *m = NULL;
    int rc;
    if (!e)
        return PV_ENOMEM;
    if (!realpath(path, abs)) {
        snprintf(err, errlen, "%s: %s%s", path, strerror(errno),
                 model && model[0] ? "" : " (scripts/setup.sh installs the default weights)");
        free(e);
        return PV_EIO;
    }
    if (strlen(abs) >= sizeof e->model) {
        snprintf(err, errlen, "%s: path too long", abs);
        free(e);
        return PV_EINVAL;
    }
    if ((rc = cnn_load(abs, &m, e->model_hash, err, errlen)) != 0) {
        free(e);
        return rc;
    }
    e->ops = &CNN_OPS;
    e->dim = MNV2_FEATURES;
    e->channels = 3;
    e->in_w = e->in_h = CNN_SIDE;
    e->blas_heavy = 1;
    e->dups_threshold = EMBED_CNN_DUPS_THRESHOLD;
    memcpy(e->model, abs, strlen(abs) + 1); /* fits: checked above */
    snprintf(e->desc, sizeof e->desc, "cnn MobileNetV2 224x224 RGB");
    e->state = m;
    *out = e;
    return PV_OK;
}
