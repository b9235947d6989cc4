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

static int want(const st_file *f, const char *path, char *err, size_t errlen, const char *name,
                int ndim, const int *shape)
{
    const st_tensor *t = st_find(f, name);
    char have[64] = "", need[64] = "";
    int ok = t && t->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++)
        ok = t->shape[d] == shape[d];
    if (ok)
        return PV_OK;
    for (int d = 0; d < ndim; d++)
        snprintf(need + strlen(need), sizeof need - strlen(need), "%s%d", d ? "," : "", shape[d]);
    if (!t) {
        snprintf(err, errlen, "%s: no tensor %s [%s]: not MobileNetV2 (alpha 1.0) weights", path,
                 name, need);
    } else {
        for (int d = 0; d < t->ndim; d++)
            snprintf(have + strlen(have), sizeof have - strlen(have), "%s%lld", d ? "," : "",
                     (long long)t->shape[d]);
        snprintf(err, errlen, "%s: tensor %s has shape [%s]; MobileNetV2 needs [%s]", path, name,
                 have, need);
    }
    return PV_ECORRUPT;
}

/* Every value of tensor name finite, and not negative if it is a variance. */
static int want_values(const st_file *f, const char *path, char *err, size_t errlen,
                       const char *name, int variance)
{
    const st_tensor *t = st_find(f, name); /* want() found it */
    for (size_t i = 0; i < t->n; i++) {
        const float x = t->data[i];
        if (!isfinite(x)) {
            snprintf(err, errlen,
                     "%s: tensor %s holds %s at element %zu: weights must be finite numbers",
                     path, name, isnan(x) ? "NaN" : x > 0 ? "+Inf" : "-Inf", i);
            return PV_ENUMERIC;
        }
        if (variance && x < 0) {
            snprintf(err, errlen,
                     "%s: tensor %s is negative at element %zu (%g): a batch norm variance "
                     "never is",
                     path, name, i, (double)x);
            return PV_ECORRUPT;
        }
    }
    return PV_OK;
}

/* A convolution kernel (Keras HWIO) and its batch norm's four vectors. */
static int want_conv(const st_file *f, const char *path, char *err, size_t errlen,
                     const char *kernel, const char *bn, int kh, int cin, int cout, int depthwise)
{
    static const char *const part[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
    char name[96];
    int shape[4] = {kh, kh, cin, depthwise ? 1 : cout};
    int rc = want(f, path, err, errlen, kernel, 4, shape);
    if (rc == PV_OK)
        rc = want_values(f, path, err, errlen, kernel, 0);
    for (int p = 0; p < 4 && rc == PV_OK; p++) {
        snprintf(name, sizeof name, "%s/%s", bn, part[p]);
        rc = want(f, path, err, errlen, name, 1, &cout);
        if (rc == PV_OK)
            rc = want_values(f, path, err, errlen, name, p == 3);
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
