/*
 * test_embed.c - the `pixels` embedder: dimensions, unit length, centring
 * (a uniform brightness shift leaves the vector as it was), flat images as
 * the zero vector, RGB layout, and the registry's errors.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "gen.h"
#include "pixvec.h"
#include "vec.h"

static img make_img(uint32_t w, uint32_t h, uint32_t ch, uint32_t seed)
{
    img im;
    memset(&im, 0, sizeof im);
    im.w = im.orig_w = w;
    im.h = im.orig_h = h;
    im.channels = ch;
    im.px = malloc((size_t)w * h * ch);
    gen_pattern(w, h, ch, seed, im.px);
    return im;
}

static double norm(const float *v, uint32_t n)
{
    double s = 0;
    for (uint32_t i = 0; i < n; i++)
        s += (double)v[i] * v[i];
    return sqrt(s);
}

Test(embed, pixels_grey_unit_length)
{
    embedder *e = NULL;
    char err[128];
    img im = make_img(100, 80, 1, 5);
    float v[784];
    cr_assert_eq(embed_create("pixels", 0, 0, NULL, &e, err, sizeof err), 0, "%s", err);
    cr_assert_eq(e->dim, 784);
    cr_assert_eq(e->channels, 1);
    cr_assert_str_eq(e->desc, "pixels 28x28 grey");
    cr_assert_eq(e->ops->embed(e, &im, 1, v), 0);
    cr_assert_float_eq(norm(v, 784), 1.0, 1e-5);
    {
        double mean = 0;
        for (int i = 0; i < 784; i++)
            mean += v[i];
        cr_assert_float_eq(mean / 784, 0.0, 1e-6, "centred");
    }
    img_free(&im);
    embed_destroy(e);
}

Test(embed, brightness_shift_does_not_move_the_vector)
{
    embedder *e = NULL;
    char err[128];
    img a = make_img(56, 56, 1, 9), b = make_img(56, 56, 1, 9);
    float va[784], vb[784];
    for (size_t i = 0; i < 56 * 56; i++) {
        a.px[i] = (uint8_t)(a.px[i] / 2);      /* keep room for the shift */
        b.px[i] = (uint8_t)(a.px[i] + 40);
    }
    cr_assert_eq(embed_create("pixels", 28, 0, NULL, &e, err, sizeof err), 0);
    cr_assert_eq(e->ops->embed(e, &a, 1, va), 0);
    cr_assert_eq(e->ops->embed(e, &b, 1, vb), 0);
    cr_assert_geq(vec_dot(va, vb, 784), 0.9999f);
    img_free(&a);
    img_free(&b);
    embed_destroy(e);
}

Test(embed, flat_image_is_zero_vector)
{
    embedder *e = NULL;
    char err[128];
    img im = make_img(30, 30, 3, 1);
    float v[16 * 16 * 3];
    memset(im.px, 77, 30 * 30 * 3);
    cr_assert_eq(embed_create("pixels", 16, 1, NULL, &e, err, sizeof err), 0);
    cr_assert_eq(e->dim, 768);
    cr_assert_eq(e->ops->embed(e, &im, 1, v), 0);
    for (int i = 0; i < 768; i++)
        cr_assert_eq(v[i], 0.0f);
    img_free(&im);
    embed_destroy(e);
}

Test(embed, batch_equals_singles)
{
    embedder *e = NULL;
    char err[128];
    img ims[3] = {make_img(40, 30, 3, 1), make_img(28, 28, 3, 2), make_img(300, 7, 3, 3)};
    float batch[3 * 192], one[192];
    cr_assert_eq(embed_create("pixels", 8, 1, NULL, &e, err, sizeof err), 0);
    cr_assert_eq(e->ops->embed(e, ims, 3, batch), 0);
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(e->ops->embed(e, &ims[i], 1, one), 0);
        cr_assert_eq(memcmp(one, batch + i * 192, sizeof one), 0, "image %d", i);
        img_free(&ims[i]);
    }
    embed_destroy(e);
}

Test(embed, wrong_channels_and_bad_params_refused)
{
    embedder *e = NULL;
    char err[128];
    img im = make_img(10, 10, 3, 1);
    float v[784];
    cr_assert_eq(embed_create("pixels", 28, 0, NULL, &e, err, sizeof err), 0);
    cr_assert_eq(e->ops->embed(e, &im, 1, v), PV_EINVAL, "RGB image to a grey embedder");
    embed_destroy(e);
    e = NULL;
    cr_assert_eq(embed_create("pixels", 1, 0, NULL, &e, err, sizeof err), PV_EINVAL);
    cr_assert_eq(embed_create("pixels", 4096, 0, NULL, &e, err, sizeof err), PV_EINVAL);
    cr_assert_eq(embed_create("clip", 0, 0, NULL, &e, err, sizeof err), PV_EINVAL);
    cr_assert(strstr(err, "clip") != NULL, "%s", err);
    img_free(&im);
}
