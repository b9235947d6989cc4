/*
 * bench_quant.c - nanoseconds per distance of the compact-vector kernels
 * (index/quant.c) against the float32 dot (index/vec.c), at 784 and 1280
 * dimensions, on every ISA level this CPU has (issue 17).
 *
 * Two regimes, both one prepared query against many stored vectors:
 *   hot  - the batch form over 256 vectors read again and again, so the
 *          float32 copies too sit in L2 and the kernel's own speed shows (an IVF list
 *          or a rerank set);
 *   hot1 - the same vectors, one call per vector (the batch form's saving);
 *   rand - one call per vector over 65,536 vectors in a random order, the
 *          memory system included (graph search touches vectors at random).
 * Each cell is the median of 15 timed runs: the machine is shared with other
 * engineers' builds, so single runs are noisy, and the table says how busy
 * the other cores were. Usage: bench_quant [reps-scale, default 1].
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_util.h"
#include "quant.h"
#include "vec.h"

#define HOT_N 256
#define RAND_N 65536
#define RUNS 15

static uint64_t rng;

static uint64_t rnext(void) /* splitmix64: deterministic data */
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static float runit(void)
{
    return (float)((double)(rnext() >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

enum { K_F32, K_F16, K_ADC, K_INT, NK };
static const char *const kname[NK] = {"f32 vec_dot", "f16", "i8 ADC", "i8 int (VNNI)"};

typedef struct {
    uint32_t dim;
    size_t n;
    float *f32;
    uint16_t *f16;
    uint8_t *i8;
    uint32_t *order; /* a random permutation, for rand */
    quant_i8 q;
    quant_i8_query qq;
    float *query;
    float *out;
} set;

static volatile float sink;

/* One pass over the set with kernel k: the batch form (random 0), one call
 * per vector in random order (1) or in order (2). Returns seconds. */
static double pass(set *s, int k, int random)
{
    size_t n = s->n, d = s->dim;
    double t0 = bench_now();
    if (!random) {
        switch (k) {
        case K_F32:
            for (size_t i = 0; i < n; i++)
                s->out[i] = vec_dot(s->query, s->f32 + i * d, d);
            break;
        case K_F16:
            quant_f16_dot_batch(s->query, s->f16, n, d, s->out);
            break;
        case K_ADC:
            quant_i8_dot_adc_batch(&s->qq, s->i8, n, s->out);
            break;
        default:
            quant_i8_dot_int_batch(&s->qq, s->i8, n, s->out);
        }
    } else {
        for (size_t j = 0; j < n; j++) {
            size_t i = random == 2 ? j : s->order[j];
            float r;
            switch (k) {
            case K_F32: r = vec_dot(s->query, s->f32 + i * d, d); break;
            case K_F16: r = quant_f16_dot(s->query, s->f16 + i * d, d); break;
            case K_ADC: r = quant_i8_dot_adc(&s->qq, s->i8 + i * d); break;
            default: r = quant_i8_dot_int(&s->qq, s->i8 + i * d);
            }
            s->out[j] = r;
        }
    }
    double t = bench_now() - t0;
    sink = s->out[n / 2];
    return t;
}

static void set_make(set *s, uint32_t dim, size_t n)
{
    memset(s, 0, sizeof *s);
    s->dim = dim;
    s->n = n;
    s->f32 = bench_alloc(n * dim * sizeof(float));
    s->f16 = bench_alloc(n * dim * sizeof(uint16_t));
    s->i8 = bench_alloc(n * dim);
    s->order = bench_alloc(n * sizeof(uint32_t));
    s->query = bench_alloc(dim * sizeof(float));
    s->out = bench_alloc(n * sizeof(float));
    /* signed features with a different spread per dimension, unit length,
     * like an embedder's output */
    for (size_t i = 0; i < n; i++) {
        float *v = s->f32 + i * dim;
        for (uint32_t j = 0; j < dim; j++)
            v[j] = runit() * (float)(1 + j % 7);
        vec_normalize(v, dim);
        s->order[i] = (uint32_t)i;
    }
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = rnext() % (i + 1);
        uint32_t t = s->order[i];
        s->order[i] = s->order[j];
        s->order[j] = t;
    }
    for (uint32_t j = 0; j < dim; j++)
        s->query[j] = runit();
    vec_normalize(s->query, dim);
    if (quant_i8_train(s->f32, n < 4096 ? n : 4096, dim, &s->q) != 0)
        bench_die("quant_i8_train", "failed");
    for (size_t i = 0; i < n; i++)
        if (quant_i8_encode(&s->q, s->f32 + i * dim, s->i8 + i * dim) < 0)
            bench_die("quant_i8_encode", "NaN");
    quant_f16_encode(s->f32, n * dim, s->f16);
    if (quant_i8_query_prep(&s->q, s->query, &s->qq) != 0)
        bench_die("quant_i8_query_prep", "failed");
}

static void set_free(set *s)
{
    free(s->f32);
    free(s->f16);
    free(s->i8);
    free(s->order);
    free(s->query);
    free(s->out);
    quant_i8_free(&s->q);
    quant_i8_query_free(&s->qq);
}

/* Median ns per distance of kernel k over RUNS timed runs, each of enough
 * passes to last about 10 ms. */
static double measure(set *s, int k, int random, double scale)
{
    double t = pass(s, k, random); /* warm-up, and a first estimate */
    int passes = (int)(0.01 * scale / (t > 1e-9 ? t : 1e-9)) + 1;
    double v[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double sum = 0;
        for (int p = 0; p < passes; p++)
            sum += pass(s, k, random);
        v[r] = sum / passes / (double)s->n * 1e9;
    }
    return bench_median(v, RUNS);
}

int main(int argc, char **argv)
{
    double scale = argc > 1 ? atof(argv[1]) : 1.0;
    if (!(scale > 0))
        bench_die("usage", "bench_quant [reps-scale > 0]");
    char cpu[256];
    bench_cpu_model(cpu, sizeof cpu);
    vec_isa best = vec_isa_active();
    printf("bench_quant: ns per distance, median of %d runs (shared machine: medians, "
           "not minima)\n", RUNS);
    printf("cpu: %s; best ISA %s\n", cpu, vec_isa_name(best));
    printf("hot: batch over %d vectors (in cache); rand: single calls over %d vectors in "
           "random order\n\n", HOT_N, RAND_N);
    static const uint32_t dims[] = {784, 1280};
    for (size_t di = 0; di < 2; di++) {
        set hot, big;
        set_make(&hot, dims[di], HOT_N);
        set_make(&big, dims[di], RAND_N);
        printf("dim %u (bytes per vector: f32 %u, f16 %u, i8 %u)\n", dims[di], 4 * dims[di],
               2 * dims[di], dims[di]);
        printf("%-14s %-7s %-10s %9s %9s %9s %9s\n", "kernel", "isa", "kernel-isa", "hot ns",
               "hot1 ns", "rand ns", "hot x f32");
        bench_mark m = bench_mark_now();
        for (vec_isa isa = VEC_SCALAR; isa <= best; isa = (vec_isa)(isa + 1)) {
            if (vec_isa_force(isa) != 0)
                continue;
            double f32hot = 0;
            for (int k = 0; k < NK; k++) {
                double h = measure(&hot, k, 0, scale), h1 = measure(&hot, k, 2, scale);
                double r = measure(&big, k, 1, scale);
                if (k == K_F32)
                    f32hot = h;
                vec_isa ki = k == K_F32 ? isa : k == K_INT ? quant_isa_i() : quant_isa_f();
                printf("%-14s %-7s %-10s %9.1f %9.1f %9.1f %8.2fx\n", kname[k],
                       vec_isa_name(isa), vec_isa_name(ki), h, h1, r, f32hot / h);
            }
        }
        printf("(other processes used %.0f%% of the machine's CPU during this table)\n\n",
               bench_others_pct(m, 2));
        vec_isa_force(best);
        set_free(&hot);
        set_free(&big);
    }
    return 0;
}
