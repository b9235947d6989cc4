/*
 * mobilenet.c - MobileNetV2's layout and the weight file check (see
 * mobilenet.h).
 *
 * The check reads every value the backbone uses, once, at load (2.2 M
 * floats, a few milliseconds): a NaN or Inf weight would give NaN for some
 * images and not others (0 x Inf on a black one), and a negative variance
 * a scale of NaN or one no trained batch norm has, so such files are
 * refused by tensor and element rather than found image by image.
 */
#include "mobilenet.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "pixvec.h"

/* (expansion t, output channels c, repeats n, first stride s), Table 2. */
static const int SPEC[7][4] = {{1, 16, 1, 1},  {6, 24, 2, 2},  {6, 32, 3, 2}, {6, 64, 4, 2},
                               {6, 96, 3, 1},  {6, 160, 3, 2}, {6, 320, 1, 1}};

static mnv2_block blocks[MNV2_BLOCKS];

const mnv2_block *mnv2_blocks(void)
{
    if (blocks[0].prefix[0])
        return blocks;
    int in = 32, b = 0;
    for (int g = 0; g < 7; g++)
        for (int r = 0; r < SPEC[g][2]; r++, b++) {
            mnv2_block *k = &blocks[b];
            if (b == 0)
                snprintf(k->prefix, sizeof k->prefix, "expanded_conv");
            else
                snprintf(k->prefix, sizeof k->prefix, "block_%d", b);
            k->in = in;
            k->expand = in * SPEC[g][0];
            k->out = SPEC[g][1];
            k->stride = r == 0 ? SPEC[g][3] : 1;
            in = k->out;
        }
    return blocks;
}

#define WHAT "MobileNetV2 (alpha 1.0)"

/* No batch norm variance is negative (st_want checked the values finite). */
static int want_variance(const st_tensor *t, const char *path, char *err, size_t errlen)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->data[i] < 0) {
            snprintf(err, errlen,
                     "%s: tensor %s is negative at element %zu (%g): a batch norm variance "
                     "never is",
                     path, t->name, i, (double)t->data[i]);
            return PV_ECORRUPT;
        }
    return PV_OK;
}

/* A convolution kernel (Keras HWIO) and its batch norm's four vectors. */
static int want_conv(const st_file *f, const char *path, char *err, size_t errlen,
                     const char *kernel, const char *bn, int kh, int cin, int cout, int depthwise)
{
    static const char *const part[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
    char name[96];
    const int64_t shape[4] = {kh, kh, cin, depthwise ? 1 : cout}, len = cout;
    int rc;
    st_want(f, path, kernel, 4, shape, WHAT, &rc, err, errlen);
    for (int p = 0; p < 4 && rc == PV_OK; p++) {
        snprintf(name, sizeof name, "%s/%s", bn, part[p]);
        const st_tensor *t = st_want(f, path, name, 1, &len, WHAT, &rc, err, errlen);
        if (t && p == 3)
            rc = want_variance(t, path, err, errlen);
    }
    return rc;
}

int mnv2_check(const st_file *f, const char *path, char *err, size_t errlen)
{
    const mnv2_block *b = mnv2_blocks();
    char k[1024], n[1024]; /* prefixes are short; sized so no name is cut */
    int rc = want_conv(f, path, err, errlen, "Conv1/kernel", "bn_Conv1", 3, 3, 32, 0);
    for (int i = 0; i < MNV2_BLOCKS && rc == PV_OK; i++) {
        const char *p = b[i].prefix;
        if (b[i].expand != b[i].in) {
            snprintf(k, sizeof k, "%s_expand/kernel", p);
            snprintf(n, sizeof n, "%s_expand_BN", p);
            rc = want_conv(f, path, err, errlen, k, n, 1, b[i].in, b[i].expand, 0);
        }
        if (rc == PV_OK) {
            snprintf(k, sizeof k, "%s_depthwise/depthwise_kernel", p);
            snprintf(n, sizeof n, "%s_depthwise_BN", p);
            rc = want_conv(f, path, err, errlen, k, n, 3, b[i].expand, b[i].expand, 1);
        }
        if (rc == PV_OK) {
            snprintf(k, sizeof k, "%s_project/kernel", p);
            snprintf(n, sizeof n, "%s_project_BN", p);
            rc = want_conv(f, path, err, errlen, k, n, 1, b[i].expand, b[i].out, 0);
        }
    }
    if (rc == PV_OK)
        rc = want_conv(f, path, err, errlen, "Conv_1/kernel", "Conv_1_bn", 1, 320,
                       MNV2_FEATURES, 0);
    return rc;
}
