/*
 * ivf.c - IVF probe and scan (index room). See ivf.h.
 *
 * Probing: ||q - c||^2 = ||q||^2 - 2 q.c + ||c||^2, so the nearest
 * centroids maximise 2 q.c - ||c||^2 (q's norm is common to all). nprobe is
 * small, so a bounded heap of the best nprobe does it in one pass.
 * Scanning: every member of the probed lists is scored with vec_dot and
 * offered to flat's bounded top-k heap.
 */
#include "ivf.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pixvec.h"
#include "pv_util.h"
#include "vec.h"

int ivf_probe(const ivf_io *io, const float *q, uint32_t nprobe,
              uint32_t *lists)
{
    if (!io || !q || !lists || nprobe == 0 || nprobe > io->nlist)
        return PV_EINVAL;
    flat_hit *h = pv_alloc_array(nprobe, sizeof *h);
    uint32_t m = 0;
    if (!h)
        return PV_ENOMEM;
    for (uint32_t l = 0; l < io->nlist; l++) {
        const float *c = io->centroid(io->ctx, l);
        if (!c) {
            free(h);
            return PV_ECORRUPT;
        }
        float s = 2.0f * vec_dot(q, c, io->dim) - vec_dot(c, c, io->dim);
        flat_heap_offer(h, &m, nprobe, l, s);
    }
    flat_heap_sort(h, m);
    for (uint32_t i = 0; i < m; i++)
        lists[i] = h[i].id;
    free(h);
    return m == nprobe ? 0 : PV_ENUMERIC;
}

typedef struct scan {
    const ivf_io *io;
    quant_scorer sc;
    flat_hit *h;
    uint32_t k, m;
} scan;

static int scan_run(void *ctx, const void *ids, size_t n)
{
    scan *s = ctx;
    const ivf_io *io = s->io;
    const unsigned char *p = ids;
    for (size_t i = 0; i < n; i++) {
        uint32_t id;
        memcpy(&id, p + i * sizeof id, sizeof id);
        const void *v = s->sc.kind == QUANT_F32 ? (const void *)io->vec(io->ctx, id)
                                                : io->code(io->ctx, id);
        if (!v)
            return PV_ECORRUPT;
        float sc = quant_score(&s->sc, v);
        if (s->m == s->k && sc <= s->h[0].score)
            continue;
        if (io->deleted && io->deleted(io->ctx, id))
            continue;
        flat_heap_offer(s->h, &s->m, s->k, id, sc);
    }
    return 0;
}

int ivf_search(const ivf_io *io, const float *q, uint32_t nprobe, uint32_t k,
               flat_hit *out, uint32_t *n)
{
    if (!io || !q || !n || (k && !out) || io->nlist == 0)
        return PV_EINVAL;
    *n = 0;
    if (k == 0)
        return 0;
    if (nprobe > io->nlist)
        nprobe = io->nlist;
    if (!isfinite(vec_dot(q, q, io->dim)))
        return PV_ENUMERIC;
    if (io->code_kind != QUANT_F32 && !io->code)
        return PV_EINVAL;
    quant_i8_query qq = {0};
    scan s = {io, {QUANT_F32, 0, NULL, NULL}, out, k, 0};
    uint32_t *lists = pv_alloc_array(nprobe, sizeof *lists);
    int rc = lists ? quant_scorer_init(&s.sc, io->code_kind, io->code_i8, q, io->dim, &qq)
                   : PV_ENOMEM;
    if (rc == 0)
        rc = ivf_probe(io, q, nprobe, lists);
    for (uint32_t i = 0; i < nprobe && rc == 0; i++)
        rc = io->list_each(io->ctx, lists[i], scan_run, &s);
    free(lists);
    quant_i8_query_free(&qq);
    if (rc != 0)
        return rc;
    flat_heap_sort(out, s.m);
    *n = s.m;
    return 0;
}
