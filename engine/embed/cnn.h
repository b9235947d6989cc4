/*
 * cnn.h - the MobileNetV2 forward pass in C (engine/embed room), up to the global
 * average pool: 1280 features per image.
 *
 * Weights come from a safetensors file checked by mnv2_check; batch norm is
 * folded into the convolution weights at load (Keras' epsilon 1e-3). The
 * network then runs on NHWC float tensors: 3x3 and 1x1 convolutions as
 * im2col / direct sgemm on OpenBLAS, depthwise 3x3 convolutions direct,
 * ReLU6, Keras' asymmetric padding for stride 2 (nothing before, one after),
 * 'same' padding for stride 1. A batch of images goes through in buffers
 * kept by a cnn_work and reused from call to call, on the work's threads
 * (cnn_work_set_threads).
 */
#ifndef PV_CNN_H
#define PV_CNN_H

#include <stddef.h>
#include <stdint.h>

#include "mobilenet.h"

#define CNN_SIDE 224

typedef struct cnn cnn;
typedef struct cnn_work cnn_work;

/* Load and fold the weights of path (checked against MobileNetV2). hash
 * gets the file's XXH3-128 (may be NULL). Errors, with err naming path and
 * the reason: st_load's, mnv2_check's, and PV_ENUMERIC when folding a
 * batch norm into its kernel overflows (naming the layer and channel). */
int cnn_load(const char *path, cnn **out, uint8_t hash[16], char *err, size_t errlen);
void cnn_free(cnn *m);

/* Scratch for batches of up to max_batch images (one per thread). */
cnn_work *cnn_work_new(size_t max_batch);
void cnn_work_free(cnn_work *w);

/* Threads for cnn_forward on this work (default 1; 0: the online cores).
 * A batch of at least that many images is split by images, one share per
 * thread; a smaller one splits the rows of the stem and of the early
 * (large) blocks, and runs the small late layers on the calling thread. Callers that
 * already run one forward pass per core (ingest workers) keep 1. The
 * features do not depend on the split beyond float rounding. PV_ENOMEM
 * (the work unchanged) when the threads' scratch cannot be allocated. */
int cnn_work_set_threads(cnn_work *w, unsigned threads);

/* Features of n images (n <= the work's max_batch), each CNN_SIDE x
 * CNN_SIDE x 3 floats, NHWC, already preprocessed; out gets n x 1280. */
int cnn_forward(const cnn *m, cnn_work *w, const float *in, size_t n, float *out);

#endif
