/*
 * embed.c - embedder registry: maps a name to its constructor. Adding an
 * embedder (cnn, clip) is one line here and one file beside embed_pixels.c.
 */
#include "embed.h"

#include <stdio.h>
#include <string.h>

#include "pixvec.h"

int embed_create(const char *name, uint32_t size, uint32_t rgb, const char *model,
                 uint32_t flags, embedder **out, char *err, size_t errlen)
{
    if (name && strcmp(name, "photo") == 0)
        return embed_photo_create(flags, out, err, errlen);
    if (name && (strcmp(name, "clip") == 0 || strcmp(name, "dinov2") == 0 ||
                 strcmp(name, "vitmae") == 0))
        return embed_vit_create(name, model, flags, out, err, errlen);
    if (flags) {
        snprintf(err, errlen, "embedder '%s' takes no options (--no-mirror is photo's, --pool vitmae's)",
                 name ? name : "(null)");
        return PV_EINVAL;
    }
    if (name && strcmp(name, "pixels") == 0)
        return embed_pixels_create(size, rgb, out, err, errlen);
    if (name && strcmp(name, "cnn") == 0)
        return embed_cnn_create(model, out, err, errlen);
    if (name && strcmp(name, EMBED_EXTERNAL_NAME) == 0) {
        if (rgb || (model && model[0])) {
            snprintf(err, errlen, "the external embedder takes only a dimension");
            return PV_EINVAL;
        }
        return embed_external_create(size, out, err, errlen);
    }
    snprintf(err, errlen,
             "unknown embedder '%s' (known: pixels, cnn, photo, clip, dinov2, vitmae, "
             "external)",
             name ? name : "(null)");
    return PV_EINVAL;
}

void embed_destroy(embedder *e)
{
    if (e)
        e->ops->destroy(e);
}
