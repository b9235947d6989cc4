/* img_tiff.c - placeholder until the decoder lands (engine/image room). */
#include "img_formats.h"

#include "pixvec.h"
#include "pv_util.h"

int img_decode_tiff(IMG_DECODER_ARGS)
{
    (void)buf; (void)n; (void)channels; (void)min_w; (void)min_h; (void)out;
    pv_set_err(err, errlen, "decoder not built yet");
    return PV_EFORMAT;
}
