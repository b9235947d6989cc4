/*
 * img_heif.c - HEIF images: HEIC (HEVC) and AVIF (AV1), through libheif
 * (engine/image room; img_formats.h).
 *
 * libheif parses the file straight from the caller's buffer
 * (heif_context_read_from_memory_without_copy: the buffer outlives the
 * context, freed before we return) and we take the primary image. Its size
 * as displayed (the 'ispe' box, after the 'clap' crop and an 'irot' quarter
 * turn) is checked with img_check_pixels BEFORE anything is decoded, so a
 * small file claiming a huge picture is refused with PV_ETOOBIG from its
 * header. libheif's own limit is set too: the 1.15 API has one, a largest
 * side for every image of the file (heif_context_set_maximum_image_size_limit,
 * 32768 by default); an 'ispe' past it is refused while the file is read,
 * which we also report as PV_ETOOBIG (heif_suberror_Security_limit_exceeded).
 * Neither covers a grid or overlay image, which libheif makes at the size
 * its own data gives: heif_precheck below reads those sizes (and every
 * 'ispe') from the boxes before libheif sees the file.
 *
 * The image is decoded whole, by libheif (libde265 for HEVC, libaom for
 * AV1; see the decoder_id below): there is no row-by-row API. We ask for 8-bit
 * interleaved RGB, or RGBA when the image has an alpha plane
 * (heif_chroma_interleaved_RGB/RGBA); a 10- or 12-bit image is converted to
 * 8 bits by libheif (convert_hdr_to_8bit). Its rows, at libheif's stride,
 * go to the img_sink, which composites alpha over white, makes grey, and
 * reduces a large image while it takes the rows. So a decode holds the
 * codec's YCbCr planes and libheif's RGB(A) copy, both of the full image
 * (within PV_MAX_PIXELS: 134 megapixels), plus our output.
 *
 * Orientation: libheif applies the file's transformative properties on
 * decode, 'irot' (rotation), 'imir' (mirror) and 'clap' (crop), as the
 * handle's size already says. That IS the HEIF orientation, and nothing
 * else is applied: an EXIF Orientation tag in the file's Exif item is
 * ignored, because the HEIF specification (ISO/IEC 23008-12) makes irot
 * and imir authoritative and leaves Exif orientation informative only.
 * Cameras write both, in agreement, so applying both would turn a photo
 * twice; and a file whose tag disagrees with its properties (Debian's
 * heif-enc 1.15 copies a JPEG's Exif, orientation included, and writes no
 * irot) is shown by HEIF viewers as its properties say.
 *
 * Errors: libheif returns a heif_error and never prints; its message goes
 * to err, mapped to PV_EDECODE, or PV_ETOOBIG / PV_ENOMEM when that is the
 * cause. A file without a primary image and an image whose codec has no
 * decoder in this libheif (its decoders are plugins in later versions) get
 * reasons of their own.
 *
 * libheif is set up once per process (heif_init, never undone: a
 * heif_deinit when the count drops to zero unregisters every decoder).
 * Tiles of a grid image are decoded in the calling thread: pixvec already
 * decodes images on worker threads.
 */
#include "img_formats.h"

#include "pixvec.h"
#include "pv_util.h"

#include <libheif/heif.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static pthread_once_t heif_once = PTHREAD_ONCE_INIT;

static void heif_setup(void)
{
    /* Registers the built-in decoders and loads any plugins; an error here
     * (a plugin folder that cannot be read) leaves the built-in ones, and
     * a codec without a decoder is reported per file (heif_codec). */
    (void)heif_init(NULL);
}

/* libheif's message without its trailing newline. */
static void heif_msg(const char *m, char *buf, size_t len)
{
    size_t k;

    pv_set_err(buf, len, "%s", m != NULL && m[0] ? m : "unknown libheif error");
    k = strlen(buf);
    while (k > 0 && (buf[k - 1] == '\n' || buf[k - 1] == ' ' || buf[k - 1] == '.'))
        buf[--k] = '\0';
}

/* The codec of a file whose primary image has no decoder: the one of the
 * two libheif knows that lacks a decoder, else the file's major brand. */
static const char *heif_codec(const uint8_t *buf, size_t n)
{
    int hevc = heif_have_decoder_for_format(heif_compression_HEVC);
    int av1 = heif_have_decoder_for_format(heif_compression_AV1);
    heif_brand2 b;

    if (hevc && av1)
        return "neither HEVC nor AV1";
    if (hevc)
        return "AV1";
    if (av1)
        return "HEVC";
    b = heif_read_main_brand(buf, (int)(n < 64 ? n : 64));
    if (b == heif_fourcc_to_brand("avif") || b == heif_fourcc_to_brand("avis"))
        return "AV1";
    if (b == heif_fourcc_to_brand("heic") || b == heif_fourcc_to_brand("heix") ||
        b == heif_fourcc_to_brand("heim") || b == heif_fourcc_to_brand("heis") ||
        b == heif_fourcc_to_brand("hevc") || b == heif_fourcc_to_brand("hevx"))
        return "HEVC";
    return "unknown";
}

/* ---- the sizes libheif would allocate, checked before it reads ----------
 *
 * libheif 1.15 bounds each image's 'ispe' by its side limit only, and
 * makes a grid image ('grid') or an overlay ('iovl') at the output size in
 * that item's own data, which it never compares with the 'ispe': a 1,344-
 * byte HEIC whose primary grid says 32000x32000 made libheif 1.15.1
 * allocate gigabytes and then crash (SIGSEGV), and 8000x8000 decoded a
 * 64x48 picture into 64 megapixels. So before libheif sees the file we
 * walk its boxes the way libheif does (the last top-level 'meta'; in it,
 * the first 'iinf', 'iloc', 'idat' and 'iprp'/'ipco'; an item's first
 * 'iloc' entry) and refuse, with PV_ETOOBIG, any 'ispe' property and any
 * grid or overlay output of more than PV_MAX_PIXELS (any image of the
 * file, not only the primary: an 'iden' or a grid makes others). A box we
 * cannot follow is left to libheif, which refuses what it cannot parse.
 * The size a codec's own stream gives (HEVC's SPS, AV1's sequence header)
 * is not read here: libde265 and dav1d decode at that size.
 * ISO/IEC 14496-12 (boxes, 'iloc') and 23008-12 ('ispe', the grid and
 * overlay data); all fields big-endian. */

typedef struct hspan {
    const uint8_t *p;
    size_t n;
} hspan;

#define FOURCC(a, b, c, d)                                                                         \
    ((uint32_t)(a) << 24 | (uint32_t)(b) << 16 | (uint32_t)(c) << 8 | (uint32_t)(d))

/* len (0..8) big-endian bytes of s at *off into *v, moving *off on;
 * 0 when they run past the end. */
static int hrd(hspan s, size_t *off, size_t len, uint64_t *v)
{
    uint64_t x = 0;

    if (*off > s.n || s.n - *off < len)
        return 0;
    for (size_t i = 0; i < len; i++)
        x = x << 8 | s.p[*off + i];
    *off += len;
    *v = x;
    return 1;
}

/* The box of s at *pos: its type and contents (after the header), *pos
 * moved past it; 0 when none is left or it runs past the end. */
static int hbox(hspan s, size_t *pos, uint32_t *type, hspan *body)
{
    size_t at = *pos, off = *pos, hdr = 8;
    uint64_t size, t;

    if (!hrd(s, &off, 4, &size) || !hrd(s, &off, 4, &t))
        return 0;
    if (size == 1) {
        if (!hrd(s, &off, 8, &size))
            return 0;
        hdr = 16;
    } else if (size == 0) {
        size = s.n - at;
    }
    if (size < hdr || size > s.n - at)
        return 0;
    *type = (uint32_t)t;
    body->p = s.p + at + hdr;
    body->n = (size_t)size - hdr;
    *pos = at + (size_t)size;
    return 1;
}

/* The first child of type `want` in s, from offset `from`. */
static int hchild(hspan s, size_t from, uint32_t want, hspan *out)
{
    uint32_t t;
    hspan b;

    while (hbox(s, &from, &t, &b))
        if (t == want) {
            *out = b;
            return 1;
        }
    return 0;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* w x h of an image libheif would make: refused past PV_MAX_PIXELS or
 * with a zero side (img_check_pixels' reason, with what it is). */
static int hsize(const char *what, uint64_t w, uint64_t h, char *err, size_t errlen)
{
    char why[160];
    int rc;

    if (w > UINT32_MAX || h > UINT32_MAX)
        w = h = UINT32_MAX;
    rc = img_check_pixels((uint32_t)w, (uint32_t)h, why, sizeof why);
    if (rc != PV_OK)
        pv_set_err(err, errlen, "%s: %s", what, why);
    return rc;
}

/* The output size in a grid's or overlay's data (first bytes of it). */
static int hderived(uint32_t type, const uint8_t *d, size_t n, char *err, size_t errlen)
{
    hspan s = {d, n};
    size_t off = type == FOURCC('g', 'r', 'i', 'd') ? 4 : 10;
    size_t field = n >= 2 && (d[1] & 1) ? 4 : 2;
    uint64_t w, h;

    if (type == FOURCC('i', 'o', 'v', 'l') && n >= 1 && d[0] != 0)
        return PV_OK; /* a version libheif 1.15 refuses */
    if (!hrd(s, &off, field, &w) || !hrd(s, &off, field, &h))
        return PV_OK; /* too short: libheif refuses it */
    return hsize(type == FOURCC('g', 'r', 'i', 'd') ? "grid image" : "overlay image", w, h, err,
                 errlen);
}

static int heif_precheck(const uint8_t *buf, size_t n, char *err, size_t errlen)
{
    hspan file = {buf, n}, meta = {NULL, 0}, iinf, iloc, idat = {NULL, 0}, iprp, ipco, b;
    uint32_t t, *ids = NULL, *types = NULL;
    uint8_t *seen = NULL;
    size_t pos = 0, nd = 0, cap, off;
    uint64_t ver, count;
    int rc = PV_OK;

    while (hbox(file, &pos, &t, &b))
        if (t == FOURCC('m', 'e', 't', 'a'))
            meta = b; /* libheif keeps the last one */
    if (meta.n < 4)
        return PV_OK;

    /* every 'ispe' property */
    if (hchild(meta, 4, FOURCC('i', 'p', 'r', 'p'), &iprp) &&
        hchild(iprp, 0, FOURCC('i', 'p', 'c', 'o'), &ipco)) {
        pos = 0;
        while (hbox(ipco, &pos, &t, &b)) {
            uint64_t w, h;
            off = 4;
            if (t == FOURCC('i', 's', 'p', 'e') && hrd(b, &off, 4, &w) && hrd(b, &off, 4, &h) &&
                (w * h > IMG_MAX_PIXELS))
                return hsize("an image's 'ispe'", w, h, err, errlen);
        }
    }

    /* grid and overlay items ('infe' versions 2 and 3 carry a type) */
    if (!hchild(meta, 4, FOURCC('i', 'i', 'n', 'f'), &iinf) ||
        !hchild(meta, 4, FOURCC('i', 'l', 'o', 'c'), &iloc))
        return PV_OK;
    (void)hchild(meta, 4, FOURCC('i', 'd', 'a', 't'), &idat);
    off = 0;
    if (!hrd(iinf, &off, 1, &ver))
        return PV_OK;
    pos = ver == 0 ? 6 : 8;
    cap = iinf.n / 16 + 1; /* an 'infe' with a type is at least 21 bytes */
    ids = pv_alloc_array(cap, sizeof *ids);
    types = pv_alloc_array(cap, sizeof *types);
    if (ids == NULL || types == NULL) {
        pv_set_err(err, errlen, "out of memory");
        rc = PV_ENOMEM;
        goto done;
    }
    while (nd < cap && hbox(iinf, &pos, &t, &b)) {
        uint64_t id, it;
        off = 0;
        if (t != FOURCC('i', 'n', 'f', 'e') || !hrd(b, &off, 1, &ver) || ver < 2 || ver > 3)
            continue;
        off = 4;
        if (!hrd(b, &off, ver == 2 ? 2 : 4, &id) || !hrd(b, &off, 2, &it) || !hrd(b, &off, 4, &it))
            continue;
        if (it == FOURCC('g', 'r', 'i', 'd') || it == FOURCC('i', 'o', 'v', 'l')) {
            ids[nd] = (uint32_t)id;
            types[nd++] = (uint32_t)it;
        }
    }
    if (nd == 0)
        goto done;
    /* sorted by id, types alongside: pack (id, index) and sort */
    {
        uint64_t *pairs = pv_alloc_array(nd, sizeof *pairs);
        uint32_t *t2 = pv_alloc_array(nd, sizeof *t2);
        if (pairs == NULL || t2 == NULL) {
            free(pairs);
            free(t2);
            pv_set_err(err, errlen, "out of memory");
            rc = PV_ENOMEM;
            goto done;
        }
        for (size_t i = 0; i < nd; i++)
            pairs[i] = (uint64_t)ids[i] << 32 | i;
        qsort(pairs, nd, sizeof *pairs, cmp_u64);
        for (size_t i = 0; i < nd; i++) {
            ids[i] = (uint32_t)(pairs[i] >> 32);
            t2[i] = types[(uint32_t)pairs[i]];
        }
        free(types);
        types = t2;
        free(pairs);
    }
    seen = calloc(nd, 1);
    if (seen == NULL) {
        pv_set_err(err, errlen, "out of memory");
        rc = PV_ENOMEM;
        goto done;
    }

    /* 'iloc': where each item's data is */
    {
        uint64_t osz, lsz, bsz, isz, sizes;
        off = 0;
        if (!hrd(iloc, &off, 1, &ver) || ver > 2)
            goto done;
        off = 4;
        if (!hrd(iloc, &off, 2, &sizes) || !hrd(iloc, &off, ver < 2 ? 2 : 4, &count))
            goto done;
        osz = sizes >> 12 & 15;
        lsz = sizes >> 8 & 15;
        bsz = sizes >> 4 & 15;
        isz = ver >= 1 ? (sizes & 15) : 0;
        if (osz > 8 || lsz > 8 || bsz > 8 || isz > 8)
            goto done;
        for (uint64_t i = 0; i < count; i++) {
            uint64_t id, method = 0, dref, base, ne, eo, el, x;
            uint8_t data[12];
            size_t have = 0;
            uint32_t key;
            const uint32_t *hit;
            if (!hrd(iloc, &off, ver < 2 ? 2 : 4, &id) ||
                (ver >= 1 && !hrd(iloc, &off, 2, &method)) || !hrd(iloc, &off, 2, &dref) ||
                !hrd(iloc, &off, bsz, &base) || !hrd(iloc, &off, 2, &ne))
                goto done;
            method &= 15;
            key = (uint32_t)id;
            hit = bsearch(&key, ids, nd, sizeof *ids, cmp_u32);
            if (isz + osz + lsz == 0)
                ne = 0; /* extents of no bytes, and no data */
            for (uint64_t e = 0; e < ne; e++) {
                if (!hrd(iloc, &off, isz, &x) || !hrd(iloc, &off, osz, &eo) ||
                    !hrd(iloc, &off, lsz, &el))
                    goto done;
                if (hit == NULL || seen[hit - ids] || have == sizeof data)
                    continue;
                hspan src = method == 0 ? file : method == 1 ? idat : (hspan){NULL, 0};
                if (eo > UINT64_MAX - base || base + eo >= src.n)
                    continue;
                size_t at = (size_t)(base + eo), k = sizeof data - have;
                if (el < k)
                    k = (size_t)el;
                if (src.n - at < k)
                    k = src.n - at;
                memcpy(data + have, src.p + at, k);
                have += k;
            }
            if (hit != NULL && !seen[hit - ids]) {
                seen[hit - ids] = 1;
                if ((rc = hderived(types[hit - ids], data, have, err, errlen)) != PV_OK)
                    goto done;
            }
        }
    }
done:
    free(ids);
    free(types);
    free(seen);
    return rc;
}

/* Whether the file ends inside a top-level box (its size says more). */
static int heif_cut(const uint8_t *buf, size_t n)
{
    hspan file = {buf, n}, b;
    size_t pos = 0;
    uint32_t t;

    while (hbox(file, &pos, &t, &b))
        ;
    return pos < n;
}

/* A heif_error to a PV_E* code and a reason in err. */
static int heif_fail(struct heif_error e, const uint8_t *buf, size_t n, char *err, size_t errlen)
{
    char m[200];

    heif_msg(e.message, m, sizeof m);
    if (e.code == heif_error_Memory_allocation_error) {
        if (e.subcode == heif_suberror_Security_limit_exceeded) {
            pv_set_err(err, errlen, "too large: %s", m);
            return PV_ETOOBIG;
        }
        pv_set_err(err, errlen, "out of memory: %s", m);
        return PV_ENOMEM;
    }
    if (heif_cut(buf, n)) {
        pv_set_err(err, errlen, "truncated (a box runs past the end, %zu bytes): %s", n, m);
        return PV_EDECODE;
    }
    if (e.code == heif_error_Unsupported_feature && e.subcode == heif_suberror_Unsupported_codec) {
        pv_set_err(err, errlen, "no decoder for this HEIF's codec (%s)", heif_codec(buf, n));
        return PV_EDECODE;
    }
    if (e.subcode == heif_suberror_No_pitm_box ||
        e.subcode == heif_suberror_No_or_invalid_primary_item) {
        pv_set_err(err, errlen, "no primary image: %s", m);
        return PV_EDECODE;
    }
    if (e.subcode == heif_suberror_End_of_data) {
        pv_set_err(err, errlen, "truncated: %s", m);
        return PV_EDECODE;
    }
    pv_set_err(err, errlen, "%s", m);
    return PV_EDECODE;
}

int img_decode_heif(IMG_DECODER_ARGS)
{
    struct heif_context *ctx = NULL;
    struct heif_image_handle *handle = NULL;
    struct heif_decoding_options *opts = NULL;
    struct heif_image *hi = NULL;
    struct heif_error e;
    img_sink sink;
    const uint8_t *plane;
    uint32_t sc, w, h;
    int rc, hw, hh, iw, ih, stride, alpha;

    memset(&sink, 0, sizeof sink);
    pthread_once(&heif_once, heif_setup);
    ctx = heif_context_alloc();
    if (ctx == NULL) {
        pv_set_err(err, errlen, "out of memory");
        rc = PV_ENOMEM;
        goto done;
    }
    /* A side past this cannot be within PV_MAX_PIXELS; libheif's default
     * (32768) is kept when it is the smaller. */
    heif_context_set_maximum_image_size_limit(ctx,
                                              PV_MAX_PIXELS < 32768u ? (int)PV_MAX_PIXELS : 32768);
    heif_context_set_max_decoding_threads(ctx, 0);

    if ((rc = heif_precheck(buf, n, err, errlen)) != PV_OK)
        goto done;
    e = heif_context_read_from_memory_without_copy(ctx, buf, n, NULL);
    if (e.code != heif_error_Ok) {
        rc = heif_fail(e, buf, n, err, errlen);
        goto done;
    }
    e = heif_context_get_primary_image_handle(ctx, &handle);
    if (e.code != heif_error_Ok || handle == NULL) {
        char m[200];
        heif_msg(e.message, m, sizeof m);
        pv_set_err(err, errlen, "no primary image: %s", m);
        rc = PV_EDECODE;
        goto done;
    }

    /* The size before decoding: 'ispe', cropped and turned as displayed. */
    hw = heif_image_handle_get_width(handle);
    hh = heif_image_handle_get_height(handle);
    if ((rc = img_check_pixels(hw > 0 ? (uint32_t)hw : 0, hh > 0 ? (uint32_t)hh : 0, err,
                               errlen)) != PV_OK)
        goto done;

    alpha = heif_image_handle_has_alpha_channel(handle) != 0;
    sc = alpha ? 4 : 3;
    opts = heif_decoding_options_alloc();
    if (opts == NULL) {
        pv_set_err(err, errlen, "out of memory");
        rc = PV_ENOMEM;
        goto done;
    }
    opts->convert_hdr_to_8bit = 1; /* since options version 2; 1.15 gives 4 */
    /* AV1 through libaom rather than dav1d (libheif's first choice):
     * dav1d's default logger writes to stderr ("Error parsing OBU data"),
     * which libheif 1.15 gives no way to change, and libheif's dav1d plugin
     * leaked dav1d's buffers on a broken stream under the fuzzer. A name no
     * decoder of the format has falls back to the best one, so HEVC still
     * goes to libde265, and AV1 to dav1d where libaom is missing. libheif
     * 1.15 passes no options down to a grid's tiles, an alpha plane or an
     * 'iden'/'iovl' source: those still go to dav1d. libde265 prints a few
     * errors of broken streams ("SPS error: ...") to stderr itself. */
    if (opts->version >= 4)
        opts->decoder_id = "aom";
    e = heif_decode_image(handle, &hi, heif_colorspace_RGB,
                          alpha ? heif_chroma_interleaved_RGBA : heif_chroma_interleaved_RGB, opts);
    if (e.code != heif_error_Ok || hi == NULL) {
        rc = e.code != heif_error_Ok ? heif_fail(e, buf, n, err, errlen) : PV_EDECODE;
        if (e.code == heif_error_Ok)
            pv_set_err(err, errlen, "libheif returned no image");
        goto done;
    }

    /* What came out: 8 bits a sample, interleaved, of a size we accept
     * (the codec's stream may disagree with 'ispe'; libheif does not
     * check). */
    iw = heif_image_get_width(hi, heif_channel_interleaved);
    ih = heif_image_get_height(hi, heif_channel_interleaved);
    plane = heif_image_get_plane_readonly(hi, heif_channel_interleaved, &stride);
    if (plane == NULL || iw <= 0 || ih <= 0 ||
        heif_image_get_bits_per_pixel(hi, heif_channel_interleaved) != (int)(8 * sc)) {
        pv_set_err(err, errlen, "libheif gave no %u-bit %s image", 8u * sc, alpha ? "RGBA" : "RGB");
        rc = PV_EDECODE;
        goto done;
    }
    w = (uint32_t)iw;
    h = (uint32_t)ih;
    if (stride < 0 || (size_t)stride < (size_t)w * sc) {
        pv_set_err(err, errlen, "libheif gave rows of %d bytes for %u pixels", stride, w);
        rc = PV_EDECODE;
        goto done;
    }
    rc = img_sink_begin(&sink, w, h, sc, channels, min_w, min_h, 1, err, errlen);
    if (rc != PV_OK)
        goto done;
    for (uint32_t y = 0; y < h; y++)
        img_sink_row(&sink, plane + (size_t)y * (size_t)stride);
    rc = img_sink_finish(&sink, out, err, errlen);
done:
    img_sink_free(&sink);
    heif_image_release(hi);
    heif_decoding_options_free(opts);
    heif_image_handle_release(handle);
    heif_context_free(ctx);
    return rc;
}
