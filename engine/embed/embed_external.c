/*
 * embed_external.c - the `external` embedder: a database whose vectors were
 * computed elsewhere and brought in by pv_import_vectors (`pixvec import`).
 * It has a dimension and nothing else: no image model, so it cannot embed an
 * image (pv_add and pv_query_image refuse with EMBED_EXTERNAL_MSG before
 * reaching embed(); embed() fails each image with PV_EEMBEDDER should
 * anything call it), and no text tower. Searches by vector, `dups`,
 * `cluster` and `map` read the stored vectors only and work as for any
 * embedder. Its meta: embedder "external", emb_size = the dimension (the
 * `size` embed_create takes), emb_rgb 0, no model.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "pixvec.h"
#include "store.h"

static int external_embed(const embedder *e, const img *imgs, size_t n, float *out, int *rcs)
{
    (void)imgs;
    memset(out, 0, n * e->dim * sizeof(float));
    for (size_t i = 0; i < n; i++)
        rcs[i] = PV_EEMBEDDER;
    return PV_OK;
}

static void external_destroy(embedder *e)
{
    free(e);
}

static const embedder_ops external_ops = {
    .name = EMBED_EXTERNAL_NAME,
    .embed = external_embed,
    .destroy = external_destroy,
};

int embed_external_create(uint32_t dim, embedder **out, char *err, size_t errlen)
{
    embedder *e;
    if (dim < 1 || dim > STORE_MAX_DIM) {
        snprintf(err, errlen, "external vectors need a dimension of 1..%u, not %u", STORE_MAX_DIM,
                 dim);
        return PV_EINVAL;
    }
    if (!(e = calloc(1, sizeof *e)))
        return PV_ENOMEM;
    e->ops = &external_ops;
    e->dim = dim;
    /* What `quality` decodes files at for their grey statistics: small. */
    e->channels = 1;
    e->in_w = e->in_h = 32;
    snprintf(e->desc, sizeof e->desc, "external (imported vectors)");
    /* Not measured: the vectors' model is unknown. As clip's. */
    e->dups_threshold = EMBED_VIT_DUPS_THRESHOLD;
    *out = e;
    return PV_OK;
}
