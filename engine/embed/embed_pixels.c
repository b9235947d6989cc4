/*
 * embed_pixels.c - the `pixels` embedder: the brightness of a downscaled
 * image, as for MNIST. The image is area-averaged to size x size (the whole
 * image, squashed to a square: no crop, so a crop of an image stays near
 * it), in grey (size*size values) or RGB (3*size*size), scaled to [0, 1],
 * centred by subtracting its mean, and L2-normalised. Centring makes the
 * score insensitive to a uniform brightness shift. An image of one colour
 * (its values' standard deviation below PIXELS_FLAT of 255) has nothing
 * left after centring: it embeds as cos(b) u + sin(b) r, b its brightness
 * mapped to [0, pi/2], u the constant unit vector and r the unit vector of
 * alternating signs. Every other vector is zero-mean (orthogonal to u) and
 * a photograph has almost nothing at r's pixel-scale alternation, so a
 * uniform image scores about 0 with a picture, 1 with a uniform image of
 * the same shade (two blank frames are near-duplicates), and 0 between
 * black and white. Each image has its own status (embed.h): one with the
 * wrong channels fails alone.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "pixvec.h"
#include "pv_util.h"
#include "vec.h"

#define PIXELS_DEFAULT_SIZE 28u
#define PIXELS_MAX_SIZE 512u
#define PIXELS_FLAT 1.0 /* std of the values (of 255) below: one colour */

/* The vector of a uniform image of mean brightness m (0..1). */
static void uniform_vector(float *v, uint32_t dim, double m)
{
    double b = m * (M_PI / 2), s = 1.0 / sqrt((double)dim);
    for (uint32_t j = 0; j < dim; j++)
        v[j] = (float)(s * (cos(b) + ((j & 1) ? -sin(b) : sin(b))));
    (void)vec_normalize(v, dim);
}

static int pixels_embed(const embedder *e, const img *imgs, size_t n,
                        float *out, int *rcs)
{
    const uint32_t s = e->in_w, ch = e->channels, dim = e->dim;
    uint8_t *small = pv_alloc_array(dim, 1);
    if (!small) {
        for (size_t i = 0; i < n; i++)
            rcs[i] = PV_ENOMEM;
        return PV_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        const img *im = &imgs[i];
        float *v = out + i * dim;
        double mean = 0;
        rcs[i] = im->channels != ch
                     ? PV_EINVAL
                     : img_resize_area(im->px, im->w, im->h, ch, small, s, s);
        if (rcs[i] == 0) {
            for (uint32_t j = 0; j < dim; j++)
                mean += small[j];
            mean /= dim * 255.0;
            double ss = 0;
            for (uint32_t j = 0; j < dim; j++) {
                v[j] = (float)(small[j] / 255.0 - mean);
                ss += (double)v[j] * v[j];
            }
            if (sqrt(ss / dim) * 255.0 < PIXELS_FLAT)
                uniform_vector(v, dim, mean);
            else if (isnan(vec_normalize(v, dim)))
                rcs[i] = PV_ENUMERIC;
        }
        if (rcs[i] != 0)
            memset(v, 0, dim * sizeof(float));
    }
    free(small);
    return PV_OK;
}

static void pixels_destroy(embedder *e) { free(e); }

static const embedder_ops pixels_ops = {"pixels", pixels_embed, pixels_destroy, NULL, NULL};

int embed_pixels_create(uint32_t size, uint32_t rgb, embedder **out,
                        char *err, size_t errlen)
{
    embedder *e;
    if (size == 0)
        size = PIXELS_DEFAULT_SIZE;
    if (size < 2 || size > PIXELS_MAX_SIZE || rgb > 1) {
        snprintf(err, errlen, "pixels: size must be 2..%u (got %u), rgb 0 or 1",
                 PIXELS_MAX_SIZE, size);
        return PV_EINVAL;
    }
    e = calloc(1, sizeof *e);
    if (!e)
        return PV_ENOMEM;
    e->ops = &pixels_ops;
    e->channels = rgb ? 3 : 1;
    e->in_w = e->in_h = size;
    e->dim = size * size * e->channels;
    e->dups_threshold = EMBED_PIXELS_DUPS_THRESHOLD;
    snprintf(e->desc, sizeof e->desc, "pixels %ux%u %s", size, size,
             rgb ? "rgb" : "grey");
    *out = e;
    return PV_OK;
}
