/*
 * mobilenet.h - MobileNetV2 (alpha 1.0, 224x224, Keras layer names) as the
 * cnn embedder's network (engine/embed room).
 *
 * This step: the architecture as data (the 17 inverted residual blocks of
 * Sandler et al. 2018, Table 2) and the check of a weight file against it:
 * every tensor the backbone needs, by Keras name, with its exact shape and
 * values it can use (finite; batch norm variances not negative). Extra
 * tensors (nsfwjs's classifier head) are allowed and ignored.
 */
#ifndef PV_MOBILENET_H
#define PV_MOBILENET_H

#include <stddef.h>

#include "safetensors.h"

#define MNV2_BLOCKS 17
#define MNV2_FEATURES 1280

typedef struct mnv2_block {
    char prefix[32]; /* "expanded_conv" or "block_N" */
    int in, expand, out, stride;
} mnv2_block;

/* The 17 blocks in order. */
const mnv2_block *mnv2_blocks(void);

/* Check that f holds every backbone tensor with the right shape and usable
 * values. Otherwise err names path, the first bad tensor and, for a value,
 * its element: PV_ECORRUPT for a tensor missing or misshapen or a negative
 * moving_variance, PV_ENUMERIC for a NaN or Inf anywhere. */
int mnv2_check(const st_file *f, const char *path, char *err, size_t errlen);

#endif
