/*
 * embed_vit.c - the transformer embedders: `clip` (image and text towers),
 * `dinov2` and `vitmae`, read from a Hugging Face checkpoint directory
 * (config.json, model.safetensors; for clip also vocab.json and
 * merges.txt) and run by one encoder (vit.c).
 *
 * Each family as its Hugging Face image processor and model define it:
 *   clip    shortest side to image_size (224) with Pillow's bicubic, centre
 *           crop, CLIP's mean and std; patch GEMM (no bias), class embedding,
 *           positions, pre-LayerNorm, blocks (QuickGELU, or GELU when the
 *           config says so), post-LayerNorm of the class token, visual
 *           projection. Text: CLIP's BPE (clip_bpe.c), at most
 *           max_position_embeddings tokens, causal blocks, final LayerNorm of
 *           the end token's row, text projection.
 *   dinov2  shortest side to 256, centre crop 224, ImageNet mean and std;
 *           patch GEMM with bias, class token, positions interpolated from
 *           the stored grid to the 16 x 16 of a 224 crop (bicubic, as HF's
 *           Dinov2Embeddings does), blocks with layer scale and GELU, final
 *           LayerNorm; the class token is the vector (as DINOv2's retrieval
 *           use takes it).
 *   vitmae  the image squashed to image_size x image_size (bicubic; HF's
 *           ViTImageProcessor resizes without cropping), ImageNet mean and
 *           std; ViT-MAE's encoder with no masking (every patch, in raster
 *           order); final LayerNorm; the class token, or with
 *           EMBED_POOL_SUM the sum over all tokens (the seed project's
 *           last_hidden_state.sum(1)). The decoder's tensors are ignored.
 * Every vector is L2-normalised.
 *
 * The checkpoint is untrusted: every size in config.json is bounded and
 * every tensor's shape checked against it (st_want) before a weight is
 * used; float32 weights are used in place in the mapped file.
 */
#include <ctype.h>
#include <cblas.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "clip_bpe.h"
#include "embed.h"
#include "img.h"
#include "pixvec.h"
#include "pv_util.h"
#include "safetensors.h"
#include "vec.h"
#include "vit.h"

enum { FAM_CLIP, FAM_DINOV2, FAM_VITMAE };
enum { POOL_CLIP, POOL_CLS, POOL_SUM };

#define VIT_BATCH 32u      /* images per forward pass at most, */
#define VIT_ROWS 2048u     /* and tokens: B/32 32 images, B/16 10, L/14 7 */
#define VIT_MAX_WIDTH 8192 /* bounds on config.json's numbers */
#define VIT_MAX_LAYERS 128
#define VIT_MAX_SIDE 2048
#define VIT_MAX_GRID 64    /* patches per side: 4,097 tokens (L/14 at 336 px: 24) */
#define DINOV2_CROP 224u
#define DINOV2_RESIZE 256u

typedef struct tower {
    vit_encoder enc;
    int patch, side, grid;         /* input side = grid * patch */
    int resize;                    /* shortest side before the crop; 0: squash to side */
    const float *patch_w, *patch_b; /* [d, 3 * patch^2], [d] or NULL */
    const float *cls, *pos;        /* [d], [1 + grid^2, d] */
    const float *pre_w, *pre_b;    /* CLIP's pre-LayerNorm, or NULL */
    const float *post_w, *post_b;  /* the last LayerNorm */
    const float *proj;             /* [out, d] or NULL */
    int pool, out;
    float mean[3], std[3];
} tower;

typedef struct text_tower {
    vit_encoder enc;
    const float *tok, *pos; /* [vocab, d], [npos, d] */
    int vocab, npos;
    const float *fin_w, *fin_b, *proj; /* final LayerNorm, [out, d] */
    clip_bpe *bpe;
} text_tower;

typedef struct vit_model {
    st_file st;
    int family;
    tower img;
    text_tower *txt;   /* clip only */
    vit_layer *layers; /* both towers' */
    float *own_pos;    /* interpolated positions (dinov2) */
} vit_model;

/* ---- messages and small files -------------------------------------------- */

/* The message into err (pv_set_err), and rc. */
#define FAILF(err, errlen, rc, ...) (pv_set_err((err), (errlen), __VA_ARGS__), (rc))

/* dir/name into out (n bytes); -1 when it does not fit. */
static int file_in(char *out, size_t n, const char *dir, const char *name)
{
    const int k = snprintf(out, n, "%s/%s", dir, name);
    return k >= 0 && (size_t)k < n ? 0 : -1;
}

/* ---- config.json ---------------------------------------------------------- */

typedef struct cfg {
    json_t *o;        /* the section read */
    const char *path; /* config.json's path */
    const char *sect; /* "vision_config", or "" at top level */
    char *err;
    size_t errlen;
    int rc;
} cfg;

/* A number at key within [lo, hi], or def when absent (def < lo: required). */
static double cfg_num(cfg *c, const char *key, double def, double lo, double hi)
{
    json_t *v = json_object_get(c->o, key);
    double x;
    if (c->rc != 0)
        return lo;
    if (!v || json_is_null(v)) {
        if (def >= lo)
            return def;
        c->rc = FAILF(c->err, c->errlen, PV_ECORRUPT, "%s: %s%s%s is missing", c->path,
                      c->sect, *c->sect ? "." : "", key);
        return lo;
    }
    x = json_is_number(v) ? json_number_value(v) : NAN;
    if (!(x >= lo && x <= hi)) {
        c->rc = FAILF(c->err, c->errlen, PV_ECORRUPT, "%s: %s%s%s must be a number in [%g, %g]",
                      c->path, c->sect, *c->sect ? "." : "", key, lo, hi);
        return lo;
    }
    return x;
}

static int cfg_int(cfg *c, const char *key, int def, int lo, int hi)
{
    const double x = cfg_num(c, key, def, lo, hi);
    if (c->rc == 0 && x != floor(x))
        c->rc = FAILF(c->err, c->errlen, PV_ECORRUPT, "%s: %s%s%s must be a whole number",
                      c->path, c->sect, *c->sect ? "." : "", key);
    return (int)x;
}

/* hidden_act: "quick_gelu" or "gelu" (def when absent). */
static int cfg_act(cfg *c, int def)
{
    json_t *v = json_object_get(c->o, "hidden_act");
    if (c->rc != 0 || !v)
        return def;
    if (json_is_string(v) && strcmp(json_string_value(v), "quick_gelu") == 0)
        return VIT_QUICK_GELU;
    if (json_is_string(v) && (strcmp(json_string_value(v), "gelu") == 0))
        return VIT_GELU;
    c->rc = FAILF(c->err, c->errlen, PV_ECORRUPT,
                  "%s: %s%shidden_act must be \"quick_gelu\" or \"gelu\"", c->path, c->sect,
                  *c->sect ? "." : "");
    return def;
}

/* The encoder's sizes from a section: width, heads, MLP width, blocks,
 * epsilon, activation. ff_key NULL: MLP width = width * mlp_ratio. */
static void cfg_encoder(cfg *c, vit_encoder *e, const char *ff_key, double eps_def, int act_def)
{
    e->d = cfg_int(c, "hidden_size", -1, 1, VIT_MAX_WIDTH);
    e->heads = cfg_int(c, "num_attention_heads", -1, 1, VIT_MAX_WIDTH);
    e->nlayers = cfg_int(c, "num_hidden_layers", -1, 1, VIT_MAX_LAYERS);
    if (ff_key) {
        e->ff = cfg_int(c, ff_key, -1, 1, 8 * VIT_MAX_WIDTH);
    } else {
        const double r = cfg_num(c, "mlp_ratio", 4, 0.01, 16);
        e->ff = (int)(e->d * r); /* int(hidden_size * mlp_ratio), as HF */
    }
    e->eps = (float)cfg_num(c, "layer_norm_eps", eps_def, 1e-30, 1);
    e->act = cfg_act(c, act_def);
    if (c->rc == 0 && (e->d % e->heads != 0 || e->ff < 1))
        c->rc = FAILF(c->err, c->errlen, PV_ECORRUPT,
                      "%s: %s%shidden_size %d is not a multiple of num_attention_heads %d",
                      c->path, c->sect, *c->sect ? "." : "", e->d, e->heads);
}

/* CLIP's section name (text_config, vision_config), with the keys of an old
 * checkpoint's *_config_dict overriding it as HF's CLIPConfig does. A new
 * reference the caller releases. */
static json_t *clip_section(json_t *root, const char *name)
{
    char dict[64];
    json_t *base = json_object_get(root, name), *out = json_object();
    snprintf(dict, sizeof dict, "%s_dict", name);
    json_t *over = json_object_get(root, dict);
    if (out && json_is_object(base))
        json_object_update(out, base);
    if (out && json_is_object(over))
        json_object_update(out, over);
    return out;
}

/* ---- tensors --------------------------------------------------------------- */

typedef struct wctx {
    const st_file *st;
    const char *path; /* model.safetensors */
    const char *what; /* "CLIP" */
    char *err;
    size_t errlen;
    int rc;
} wctx;

/* The float tensor prefix+name of shape [s0, s1, s2, s3] (trailing zeros
 * end the shape). */
static const float *W(wctx *w, const char *prefix, const char *name, int64_t s0, int64_t s1,
                      int64_t s2, int64_t s3)
{
    char full[256];
    const int64_t shape[4] = {s0, s1, s2, s3};
    const int nd = s3 ? 4 : s2 ? 3 : s1 ? 2 : 1;
    if (w->rc != 0)
        return NULL;
    snprintf(full, sizeof full, "%s%s", prefix, name);
    const st_tensor *t = st_want(w->st, w->path, full, nd, shape, w->what, &w->rc, w->err,
                                 w->errlen);
    return t ? t->data : NULL;
}

/* The names of a block's tensors, in vit_layer's order; NULL: absent. */
static const char *const CLIP_LAYER[18] = {
    "layer_norm1.weight", "layer_norm1.bias", "self_attn.q_proj.weight", "self_attn.q_proj.bias",
    "self_attn.k_proj.weight", "self_attn.k_proj.bias", "self_attn.v_proj.weight",
    "self_attn.v_proj.bias", "self_attn.out_proj.weight", "self_attn.out_proj.bias",
    "layer_norm2.weight", "layer_norm2.bias", "mlp.fc1.weight", "mlp.fc1.bias",
    "mlp.fc2.weight", "mlp.fc2.bias", NULL, NULL};
static const char *const DINOV2_LAYER[18] = {
    "norm1.weight", "norm1.bias", "attention.attention.query.weight",
    "attention.attention.query.bias", "attention.attention.key.weight",
    "attention.attention.key.bias", "attention.attention.value.weight",
    "attention.attention.value.bias", "attention.output.dense.weight",
    "attention.output.dense.bias", "norm2.weight", "norm2.bias", "mlp.fc1.weight",
    "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias", "layer_scale1.lambda1",
    "layer_scale2.lambda1"};
static const char *const VITMAE_LAYER[18] = {
    "layernorm_before.weight", "layernorm_before.bias", "attention.attention.query.weight",
    "attention.attention.query.bias", "attention.attention.key.weight",
    "attention.attention.key.bias", "attention.attention.value.weight",
    "attention.attention.value.bias", "attention.output.dense.weight",
    "attention.output.dense.bias", "layernorm_after.weight", "layernorm_after.bias",
    "intermediate.dense.weight", "intermediate.dense.bias", "output.dense.weight",
    "output.dense.bias", NULL, NULL};

/* The encoder's blocks: layer_fmt has one %d ("vision_model.encoder.layers.%d."). */
static void load_layers(wctx *w, const char *layer_fmt, const char *const names[18],
                        vit_encoder *e, vit_layer *layers)
{
    const int64_t d = e->d, ff = e->ff;
    /* per name: the shape (rows, cols; cols 0 for a vector) */
    const int64_t shape[18][2] = {{d, 0},  {d, 0}, {d, d}, {d, 0},  {d, d},  {d, 0},
                                  {d, d},  {d, 0}, {d, d}, {d, 0},  {d, 0},  {d, 0},
                                  {ff, d}, {ff, 0}, {d, ff}, {d, 0}, {d, 0}, {d, 0}};
    char prefix[128];
    e->layers = layers;
    for (int l = 0; l < e->nlayers && w->rc == 0; l++) {
        _Static_assert(sizeof(vit_layer) == 18 * sizeof(const float *),
                       "vit_layer is the 18 pointers of the name tables, in order");
        const float **f = (const float **)&layers[l];
        snprintf(prefix, sizeof prefix, layer_fmt, l);
        for (int i = 0; i < 18; i++)
            f[i] = names[i] ? W(w, prefix, names[i], shape[i][0], shape[i][1], 0, 0) : NULL;
    }
}

/* ---- loading ---------------------------------------------------------------- */

static const float CLIP_MEAN[3] = {0.48145466f, 0.4578275f, 0.40821073f};
static const float CLIP_STD[3] = {0.26862954f, 0.26130258f, 0.27577711f};
static const float IMAGENET_MEAN[3] = {0.485f, 0.456f, 0.406f};
static const float IMAGENET_STD[3] = {0.229f, 0.224f, 0.225f};

/* An image tower's input side, patch and positions from a section. */
static void cfg_image(cfg *c, tower *T)
{
    T->patch = cfg_int(c, "patch_size", -1, 1, VIT_MAX_SIDE);
    T->side = cfg_int(c, "image_size", -1, 1, VIT_MAX_SIDE);
    (void)cfg_int(c, "num_channels", 3, 3, 3); /* RGB only: refuses any other */
}

static int too_many_patches(wctx *w, const char *cpath, int grid)
{
    return FAILF(w->err, w->errlen, PV_ECORRUPT,
                 "%s: image_size / patch_size gives %d patches a side; 1 to %d are read",
                 cpath, grid, VIT_MAX_GRID);
}

static void *alloc_layers(int n) { return pv_calloc_array((size_t)n, sizeof(vit_layer)); }

static int load_clip(vit_model *m, json_t *root, const char *cpath, const char *dir, wctx *w)
{
    cfg c = {.path = cpath, .err = w->err, .errlen = w->errlen};
    json_t *vs = clip_section(root, "vision_config"), *ts = clip_section(root, "text_config");
    tower *T = &m->img;
    text_tower *X = m->txt = calloc(1, sizeof *m->txt);
    int rc;
    if (!vs || !ts || !X) {
        json_decref(vs);
        json_decref(ts);
        return PV_ENOMEM;
    }
    c.o = root;
    c.sect = "";
    const int proj = cfg_int(&c, "projection_dim", 512, 1, VIT_MAX_WIDTH);
    c.o = vs;
    c.sect = "vision_config";
    cfg_encoder(&c, &T->enc, "intermediate_size", 1e-5, VIT_QUICK_GELU);
    cfg_image(&c, T);
    c.o = ts;
    c.sect = "text_config";
    cfg_encoder(&c, &X->enc, "intermediate_size", 1e-5, VIT_QUICK_GELU);
    X->npos = cfg_int(&c, "max_position_embeddings", 77, 2, 4096);
    json_decref(vs);
    json_decref(ts);
    if (c.rc != 0)
        return c.rc;
    if (T->side % T->patch != 0)
        return FAILF(w->err, w->errlen, PV_ECORRUPT,
                     "%s: vision_config.image_size %d is not a multiple of patch_size %d",
                     cpath, T->side, T->patch);
    T->grid = T->side / T->patch;
    if (T->grid > VIT_MAX_GRID)
        return too_many_patches(w, cpath, T->grid);
    T->resize = T->side;
    T->pool = POOL_CLIP;
    T->out = proj;
    memcpy(T->mean, CLIP_MEAN, sizeof T->mean);
    memcpy(T->std, CLIP_STD, sizeof T->std);
    const int64_t d = T->enc.d, np = 1 + (int64_t)T->grid * T->grid;
    const char *v = "vision_model.";
    T->cls = W(w, v, "embeddings.class_embedding", d, 0, 0, 0);
    T->patch_w = W(w, v, "embeddings.patch_embedding.weight", d, 3, T->patch, T->patch);
    T->pos = W(w, v, "embeddings.position_embedding.weight", np, d, 0, 0);
    T->pre_w = W(w, v, "pre_layrnorm.weight", d, 0, 0, 0);
    T->pre_b = W(w, v, "pre_layrnorm.bias", d, 0, 0, 0);
    T->post_w = W(w, v, "post_layernorm.weight", d, 0, 0, 0);
    T->post_b = W(w, v, "post_layernorm.bias", d, 0, 0, 0);
    T->proj = W(w, "", "visual_projection.weight", proj, d, 0, 0);
    const int64_t xd = X->enc.d;
    const char *t = "text_model.";
    const st_tensor *tok = st_find(&m->st, "text_model.embeddings.token_embedding.weight");
    X->vocab = tok && tok->ndim == 2 && tok->shape[0] > 0 && tok->shape[0] <= (1 << 22)
                   ? (int)tok->shape[0]
                   : 1;
    X->tok = W(w, t, "embeddings.token_embedding.weight", X->vocab, xd, 0, 0);
    X->pos = W(w, t, "embeddings.position_embedding.weight", X->npos, xd, 0, 0);
    X->fin_w = W(w, t, "final_layer_norm.weight", xd, 0, 0, 0);
    X->fin_b = W(w, t, "final_layer_norm.bias", xd, 0, 0, 0);
    X->proj = W(w, "", "text_projection.weight", proj, xd, 0, 0);
    if (!(m->layers = alloc_layers(T->enc.nlayers + X->enc.nlayers)))
        return PV_ENOMEM;
    load_layers(w, "vision_model.encoder.layers.%d.", CLIP_LAYER, &T->enc, m->layers);
    load_layers(w, "text_model.encoder.layers.%d.", CLIP_LAYER, &X->enc,
                m->layers + T->enc.nlayers);
    if (w->rc != 0)
        return w->rc;
    /* The tokenizer, whose ids must be rows of the token embedding. */
    char vocab[PATH_MAX + 32], merges[PATH_MAX + 32];
    if (file_in(vocab, sizeof vocab, dir, "vocab.json") != 0 ||
        file_in(merges, sizeof merges, dir, "merges.txt") != 0)
        return FAILF(w->err, w->errlen, PV_EINVAL, "%s: path too long", dir);
    if ((rc = clip_bpe_load(vocab, merges, &X->bpe, w->err, w->errlen)) != 0)
        return rc;
    if (clip_bpe_vocab_size(X->bpe) > X->vocab)
        return FAILF(w->err, w->errlen, PV_ECORRUPT,
                     "%s: ids up to %d, but text_model.embeddings.token_embedding.weight "
                     "has %d rows",
                     vocab, (int)clip_bpe_vocab_size(X->bpe) - 1, X->vocab);
    return PV_OK;
}

/* dinov2 and vitmae: one tower, keys with an optional model prefix. */
static int load_vit(vit_model *m, json_t *root, const char *cpath, wctx *w, uint32_t flags)
{
    cfg c = {.o = root, .path = cpath, .sect = "", .err = w->err, .errlen = w->errlen};
    tower *T = &m->img;
    const int dino = m->family == FAM_DINOV2;
    cfg_encoder(&c, &T->enc, dino ? NULL : "intermediate_size", dino ? 1e-6 : 1e-12,
                VIT_GELU);
    cfg_image(&c, T);
    if (dino && c.rc == 0 && json_is_true(json_object_get(root, "use_swiglu_ffn")))
        return FAILF(w->err, w->errlen, PV_ECORRUPT,
                     "%s: use_swiglu_ffn (DINOv2 giant) is not supported; use dinov2-small, "
                     "-base or -large",
                     cpath);
    if (c.rc != 0)
        return c.rc;
    /* the stored positions' grid, as the config's image_size gives it */
    if (T->side % T->patch != 0 && !dino)
        return FAILF(w->err, w->errlen, PV_ECORRUPT,
                     "%s: image_size %d is not a multiple of patch_size %d", cpath, T->side,
                     T->patch);
    const int stored = T->side / T->patch;
    const int run = dino ? (int)DINOV2_CROP / T->patch : stored; /* the input's grid */
    if (stored < 1 || stored > VIT_MAX_GRID)
        return too_many_patches(w, cpath, stored);
    if (run < 1 || run > VIT_MAX_GRID)
        return too_many_patches(w, cpath, run);
    const char *pre = dino ? (st_find(&m->st, "dinov2.embeddings.cls_token") ? "dinov2." : "")
                           : (st_find(&m->st, "vit.embeddings.cls_token") ? "vit." : "");
    const int64_t d = T->enc.d, np = 1 + (int64_t)stored * stored;
    char lf[64];
    T->cls = W(w, pre, "embeddings.cls_token", 1, 1, d, 0);
    T->pos = W(w, pre, "embeddings.position_embeddings", 1, np, d, 0);
    T->patch_w = W(w, pre, "embeddings.patch_embeddings.projection.weight", d, 3, T->patch,
                   T->patch);
    T->patch_b = W(w, pre, "embeddings.patch_embeddings.projection.bias", d, 0, 0, 0);
    T->post_w = W(w, pre, "layernorm.weight", d, 0, 0, 0);
    T->post_b = W(w, pre, "layernorm.bias", d, 0, 0, 0);
    if (!(m->layers = alloc_layers(T->enc.nlayers)))
        return PV_ENOMEM;
    snprintf(lf, sizeof lf, "%sencoder.layer.%%d.", pre);
    load_layers(w, lf, dino ? DINOV2_LAYER : VITMAE_LAYER, &T->enc, m->layers);
    if (w->rc != 0)
        return w->rc;
    T->out = T->enc.d;
    memcpy(T->mean, IMAGENET_MEAN, sizeof T->mean);
    memcpy(T->std, IMAGENET_STD, sizeof T->std);
    if (dino) {
        /* a 224 crop of the shortest side at 256; positions fitted to its grid */
        T->side = DINOV2_CROP;
        T->resize = DINOV2_RESIZE;
        T->grid = T->side / T->patch;
        T->side = T->grid * T->patch;
        T->pool = POOL_CLS;
        if (T->grid != stored) {
            const size_t g2 = (size_t)T->grid * (size_t)T->grid;
            if (!(m->own_pos = pv_alloc_array(1 + g2, (size_t)d * sizeof(float))))
                return PV_ENOMEM;
            memcpy(m->own_pos, T->pos, (size_t)d * sizeof(float));
            vit_interp_bicubic(T->pos + d, stored, stored, (int)d, m->own_pos + d, T->grid,
                               T->grid);
            T->pos = m->own_pos;
        }
    } else {
        T->grid = stored;
        T->resize = 0;
        T->pool = flags & EMBED_POOL_SUM ? POOL_SUM : POOL_CLS;
    }
    return PV_OK;
}

static void model_free(vit_model *m)
{
    if (!m)
        return;
    if (m->txt)
        clip_bpe_free(m->txt->bpe);
    free(m->txt);
    free(m->layers);
    free(m->own_pos);
    st_free(&m->st);
    free(m);
}

/* XXH3-128 of the checkpoint: the weights' hash, config.json's bytes
 * (read already), then the other files'. */
static int hash_files(const uint8_t st_hash[16], const char *config, size_t config_len,
                      const char *const *paths, int n, uint8_t out[16], char *err,
                      size_t errlen)
{
    XXH3_state_t *s = XXH3_createState();
    int rc = s ? PV_OK : PV_ENOMEM;
    if (s) {
        XXH3_128bits_reset(s);
        XXH3_128bits_update(s, st_hash, 16);
        XXH3_128bits_update(s, config, config_len);
    }
    for (int i = 0; i < n && rc == 0; i++) {
        char *buf;
        size_t len;
        if ((rc = pv_read_file(paths[i], 64u << 20, &buf, &len, err, errlen)) == 0) {
            XXH3_128bits_update(s, buf, len);
            free(buf);
        }
    }
    if (rc == 0) {
        XXH128_canonical_t c;
        XXH128_canonicalFromHash(&c, XXH3_128bits_digest(s));
        memcpy(out, c.digest, 16);
    }
    XXH3_freeState(s);
    return rc;
}

static int model_load(const char *dir, int family, uint32_t flags, vit_model **out,
                      uint8_t hash[16], char *err, size_t errlen)
{
    static const char *const WHAT[] = {"CLIP", "DINOv2", "ViT-MAE"};
    char cpath[PATH_MAX + 32], spath[PATH_MAX + 32], vpath[PATH_MAX + 32], mpath[PATH_MAX + 32];
    vit_model *m = calloc(1, sizeof *m);
    json_t *root = NULL;
    char *text = NULL;
    size_t len;
    int rc;
    if (!m)
        return PV_ENOMEM;
    m->family = family;
    if (file_in(cpath, sizeof cpath, dir, "config.json") != 0 ||
        file_in(spath, sizeof spath, dir, "model.safetensors") != 0 ||
        file_in(vpath, sizeof vpath, dir, "vocab.json") != 0 ||
        file_in(mpath, sizeof mpath, dir, "merges.txt") != 0) {
        rc = FAILF(err, errlen, PV_EINVAL, "%s: path too long", dir);
        goto done;
    }
    if ((rc = pv_read_file(cpath, 1u << 20, &text, &len, err, errlen)) != 0)
        goto done;
    json_error_t je;
    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root || !json_is_object(root)) {
        rc = FAILF(err, errlen, PV_ECORRUPT, "%s: not a JSON object (%s, line %d)", cpath,
                   root ? "another value" : je.text, je.line);
        goto done;
    }
    char bin[PATH_MAX + 32];
    if (file_in(bin, sizeof bin, dir, "pytorch_model.bin") == 0 && access(spath, F_OK) != 0 &&
        access(bin, F_OK) == 0) {
        rc = FAILF(err, errlen, PV_EIO,
                   "%s: no such file; the directory has pytorch_model.bin, a pickle pixvec "
                   "does not read: convert it once with scripts/convert_checkpoint.py %s",
                   spath, dir);
        goto done;
    }
    if ((rc = st_load(spath, &m->st, err, errlen)) != 0)
        goto done;
    wctx w = {.st = &m->st, .path = spath, .what = WHAT[family], .err = err, .errlen = errlen};
    rc = family == FAM_CLIP ? load_clip(m, root, cpath, dir, &w)
                            : load_vit(m, root, cpath, &w, flags);
    if (rc == 0) {
        const char *files[2] = {vpath, mpath};
        rc = hash_files(m->st.hash, text, len, files, family == FAM_CLIP ? 2 : 0, hash, err,
                        errlen);
    }
done:
    json_decref(root);
    free(text);
    if (rc != 0)
        model_free(m);
    else
        *out = m;
    return rc;
}

/* ---- forward ------------------------------------------------------------------ */

/* nb preprocessed images (3 x side x side floats each) to nb vectors. */
static int image_forward(const tower *T, const float *in, size_t nb, float *out)
{
    const size_t d = (size_t)T->enc.d, p = (size_t)T->patch, g = (size_t)T->grid,
                 side = (size_t)T->grid * p, np = g * g, t = 1 + np, k = 3 * p * p;
    /* cols: nb*np x k; pe: nb*np x d; x: nb*t x d; row: d */
    float *cols = vit_scratch(VIT_SLOT_TOWER, nb * np * k + nb * np * d + nb * t * d + d);
    if (!cols)
        return PV_ENOMEM;
    float *pe = cols + nb * np * k, *x = pe + nb * np * d, *row = x + nb * t * d;
    int rc;
    /* patches as rows, each in (channel, y, x) order as the conv weight */
    for (size_t b = 0; b < nb; b++)
        for (size_t gy = 0; gy < g; gy++)
            for (size_t gx = 0; gx < g; gx++) {
                float *c = cols + ((b * np) + gy * g + gx) * k;
                for (size_t ch = 0; ch < 3; ch++)
                    for (size_t y = 0; y < p; y++)
                        memcpy(c + (ch * p + y) * p,
                               in + ((b * 3 + ch) * side + gy * p + y) * side + gx * p,
                               p * sizeof(float));
            }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(nb * np), (int)d, (int)k, 1.0f,
                cols, (int)k, T->patch_w, (int)k, 0.0f, pe, (int)d);
    for (size_t b = 0; b < nb; b++) {
        float *xb = x + b * t * d;
        for (size_t j = 0; j < d; j++)
            xb[j] = T->cls[j] + T->pos[j];
        for (size_t i = 0; i < np; i++)
            for (size_t j = 0; j < d; j++)
                xb[(1 + i) * d + j] = pe[(b * np + i) * d + j] + T->pos[(1 + i) * d + j] +
                                      (T->patch_b ? T->patch_b[j] : 0.0f);
    }
    if (T->pre_w)
        for (size_t r = 0; r < nb * t; r++)
            vit_layernorm(x + r * d, d, T->pre_w, T->pre_b, T->enc.eps, x + r * d);
    if ((rc = vit_encode(&T->enc, x, nb, t, 0,
                         T->pool == POOL_SUM ? VIT_KEEP_ALL : VIT_KEEP_FIRST)) != 0)
        return rc;
    for (size_t b = 0; b < nb; b++) {
        const float *xb = x + b * t * d;
        float *o = out + b * (size_t)T->out;
        if (T->pool == POOL_SUM) {
            memset(o, 0, d * sizeof(float));
            for (size_t i = 0; i < t; i++) {
                vit_layernorm(xb + i * d, d, T->post_w, T->post_b, T->enc.eps, row);
                for (size_t j = 0; j < d; j++)
                    o[j] += row[j];
            }
        } else if (T->proj) {
            vit_layernorm(xb, d, T->post_w, T->post_b, T->enc.eps, row);
            cblas_sgemv(CblasRowMajor, CblasNoTrans, T->out, (int)d, 1.0f, T->proj, (int)d, row,
                        1, 0.0f, o, 1);
        } else {
            vit_layernorm(xb, d, T->post_w, T->post_b, T->enc.eps, o);
        }
    }
    return PV_OK;
}

/* One decoded image to the network's input (3 x side x side floats). */
static int preprocess(const tower *T, const img *im, uint8_t *small, float *in)
{
    const uint32_t side = (uint32_t)(T->grid * T->patch);
    int rc;
    if (im->channels != 3)
        return PV_EINVAL;
    rc = T->resize ? img_resize_short_crop(im->px, im->w, im->h, 3, (uint32_t)T->resize, side,
                                           IMG_FILTER_BICUBIC, small)
                   : img_resize_pil(im->px, im->w, im->h, 3, small, side, side,
                                    IMG_FILTER_BICUBIC);
    if (rc != 0)
        return rc;
    const size_t n = (size_t)side * side;
    for (size_t c = 0; c < 3; c++)
        for (size_t i = 0; i < n; i++)
            in[c * n + i] = (small[i * 3 + c] * (1.0f / 255.0f) - T->mean[c]) / T->std[c];
    return PV_OK;
}

static int vit_embed(const embedder *e, const img *imgs, size_t n, float *out, int *rcs)
{
    const vit_model *m = e->state;
    const tower *T = &m->img;
    const size_t side = (size_t)T->grid * (size_t)T->patch, px = 3 * side * side;
    const size_t batch = n < e->batch ? n : e->batch;
    /* the batch's inputs, then one image's resized bytes */
    float *in = vit_scratch(VIT_SLOT_INPUT, (batch ? batch : 1) * px + px / 4 + 1);
    uint8_t *small = in ? (uint8_t *)(in + (batch ? batch : 1) * px) : NULL;
    int rc = in ? PV_OK : PV_ENOMEM;
    for (size_t b = 0; b < n && rc == 0; b += batch) {
        const size_t k = n - b < batch ? n - b : batch;
        for (size_t i = 0; i < k; i++) {
            rcs[b + i] = preprocess(T, &imgs[b + i], small, in + i * px);
            if (rcs[b + i] != 0) /* a failed image keeps its place, as zeros */
                memset(in + i * px, 0, px * sizeof(float));
        }
        rc = image_forward(T, in, k, out + b * e->dim);
        for (size_t i = 0; i < k && rc == 0; i++) {
            float *v = out + (b + i) * e->dim;
            if (rcs[b + i] == 0 && isnan(vec_normalize(v, e->dim)))
                rcs[b + i] = PV_ENUMERIC;
            if (rcs[b + i] != 0)
                memset(v, 0, e->dim * sizeof(float));
        }
    }
    if (rc != 0)
        for (size_t i = 0; i < n; i++)
            rcs[i] = rc;
    return rc;
}

static int vit_embed_text(const embedder *e, const char *text, size_t len, float *out,
                          char *err, size_t errlen)
{
    const vit_model *m = e->state;
    const text_tower *X = m->txt;
    const size_t d = (size_t)X->enc.d, npos = (size_t)X->npos;
    /* x: npos x d, row: d, then the ids */
    float *x = vit_scratch(VIT_SLOT_TOWER, npos * d + d + npos);
    float *row = x ? x + npos * d : NULL;
    int32_t *ids = x ? (int32_t *)(row + d) : NULL;
    size_t n = 0;
    int rc = x ? PV_OK : PV_ENOMEM;
    if (rc == 0)
        rc = clip_bpe_encode(X->bpe, text, len, ids, npos, &n, err, errlen);
    if (rc == 0) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < d; j++)
                x[i * d + j] = X->tok[(size_t)ids[i] * d + j] + X->pos[i * d + j];
        /* Causal: the end token's row sees every token before it, and no
         * padding is needed after it. */
        rc = vit_encode(&X->enc, x, 1, n, 1, VIT_KEEP_LAST);
    }
    if (rc == 0) {
        vit_layernorm(x + (n - 1) * d, d, X->fin_w, X->fin_b, X->enc.eps, row);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)e->dim, (int)d, 1.0f, X->proj, (int)d, row,
                    1, 0.0f, out, 1);
        if (isnan(vec_normalize(out, e->dim)))
            rc = FAILF(err, errlen, PV_ENUMERIC, "the text's vector came out NaN or Inf");
    }
    return rc;
}

static void vit_destroy(embedder *e)
{
    model_free(e->state);
    free(e);
}

static const embedder_ops CLIP_OPS = {"clip", vit_embed, vit_destroy, NULL, vit_embed_text};
static const embedder_ops DINOV2_OPS = {"dinov2", vit_embed, vit_destroy, NULL, NULL};
static const embedder_ops VITMAE_OPS = {"vitmae", vit_embed, vit_destroy, NULL, NULL};

int embed_vit_create(const char *name, const char *model, uint32_t flags, embedder **out,
                     char *err, size_t errlen)
{
    const int family = strcmp(name, "clip") == 0     ? FAM_CLIP
                       : strcmp(name, "dinov2") == 0 ? FAM_DINOV2
                                                     : FAM_VITMAE;
    char abs[PATH_MAX];
    embedder *e;
    vit_model *m = NULL;
    int rc;
    if (!model || !model[0])
        return FAILF(err, errlen, PV_EINVAL,
                     "the %s embedder needs --model DIR, a Hugging Face checkpoint directory "
                     "(README.md says which files to download)",
                     name);
    if ((flags & ~(uint32_t)EMBED_POOL_SUM) || ((flags & EMBED_POOL_SUM) && family != FAM_VITMAE))
        return FAILF(err, errlen, PV_EINVAL, "embedder '%s' takes no such option%s", name,
                     flags & EMBED_POOL_SUM ? " (--pool sum is vitmae's)" : "");
    if (!realpath(model, abs)) {
        char why[128];
        pv_errno_text(errno, why, sizeof why);
        return FAILF(err, errlen, PV_EIO, "%s: %s", model, why);
    }
    if (strlen(abs) >= sizeof e->model - 32)
        return FAILF(err, errlen, PV_EINVAL, "%s: path too long", abs);
    if (!(e = calloc(1, sizeof *e)))
        return PV_ENOMEM;
    if ((rc = model_load(abs, family, flags, &m, e->model_hash, err, errlen)) != 0) {
        free(e);
        return rc;
    }
    e->ops = family == FAM_CLIP ? &CLIP_OPS : family == FAM_DINOV2 ? &DINOV2_OPS : &VITMAE_OPS;
    e->dim = (uint32_t)m->img.out;
    e->channels = 3;
    e->in_w = e->in_h = (uint32_t)(m->img.resize ? m->img.resize : m->img.side);
    e->png_whole = 1;
    e->blas_heavy = 1;
    /* images per forward: VIT_ROWS tokens, at most VIT_BATCH images */
    const uint32_t tokens = 1u + (uint32_t)(m->img.grid * m->img.grid);
    e->batch = VIT_ROWS / tokens < 1 ? 1 : VIT_ROWS / tokens > VIT_BATCH ? VIT_BATCH
                                                                      : VIT_ROWS / tokens;
    e->flags = flags;
    e->dups_threshold = EMBED_VIT_DUPS_THRESHOLD;
    memcpy(e->model, abs, strlen(abs) + 1);
    snprintf(e->desc, sizeof e->desc, "%s ViT %dx%d patch %d, %d px, %u dims%s", name,
             m->img.enc.nlayers, m->img.enc.d, m->img.patch, m->img.grid * m->img.patch,
             e->dim, m->img.pool == POOL_SUM ? ", token sum" : "");
    e->state = m;
    *out = e;
    return PV_OK;
}
