#!/usr/bin/env bash
# bench/photo_set.sh - the near-duplicate photo set of issue 13, made from
# Debian packages only: real photographs (originals), 15 edited copies of each
# (variants) made by ImageMagick, and look-alike photographs that are near
# copies of nothing else (distractors: night skies, far-apart frames of one
# scene, textures). Every source file is named below (package + path suffix)
# and found through that package's own file list (dpkg-query -L), so the set
# is the same on every machine that has the same package versions; a package
# that is not installed, or a file it lacks, is an error naming it.
#
# Layout (other bench scripts read it):
#   OUT/orig/ID.jpg              an original: JPEG q92, longest side <= 1600
#   OUT/var/ID__TRANSFORM.EXT    one per transform below, from OUT/orig/ID.jpg
#   OUT/distract/ID.jpg          a distractor, normalised like an original
#   OUT/1600/ID.jpg              each original at exactly 1600x1200, JPEG q90
#   OUT/manifest.tsv             path<TAB>group<TAB>transform, one per image:
#                                group ID (original and its variants) or d:ID
#                                (a distractor); transform orig, distractor or
#                                the transform's name
#   OUT/sources.tsv              ID, kind, package and file each came from
# Transforms: q30 q60 (JPEG quality), half quarter (resize, q90), png50
# (resize 50 %, PNG), crop90 crop80 (centre crop keeping that share of the
# area, same aspect), bright dark (-modulate 130 / 70: multiplied, so a dark
# night sky keeps its stars), contrast (-brightness-contrast 0x30), rot3 (3
# degrees, then the largest centred rectangle of the same aspect without fill
# corners), blur (Gaussian, sigma = longest side / 800), watermark (50 %
# white "(c) pixvec 2026", 1/12 of the height, bottom right), grey, mirror.
# Originals that a 64-bit average hash puts within Hamming 10 of an earlier
# one are dropped (the same picture shipped twice) and named.
#
# A re-run on a complete OUT does nothing; an incomplete one made by this
# script is removed and made again. Conversions run 2 at a time.
#
# usage: bench/photo_set.sh OUT
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: bench/photo_set.sh OUT" >&2; exit 2; }
OUT=$1
FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf
TRANSFORMS="q30 q60 half quarter png50 crop90 crop80 bright dark contrast rot3 blur watermark grey mirror"
export LC_ALL=C FONT
t0=$(date +%s)

# Originals: PACKAGE PATH-SUFFIX ID BACKGROUND (put behind transparent parts).
ORIGINALS='
  lomiri-wallpapers-16.04 backgrounds/Bridge_by_Sander_Klootwijk.jpg lomiri16_bridge white
  lomiri-wallpapers-16.04 backgrounds/Dragonfly_by_Bolly.jpg lomiri16_dragonfly white
  lomiri-wallpapers-16.04 backgrounds/Picture_0B_by_freespace.jpg lomiri16_fig white
  lomiri-wallpapers-16.04 backgrounds/Picture_1A_by_freespace.jpg lomiri16_brushes white
  lomiri-wallpapers-16.04 backgrounds/Wine_by_Jakkub_Mede.jpg lomiri16_wine white
  lomiri-wallpapers-16.04 backgrounds/aitzgorri_by_Aitzol_Berasategi.jpg lomiri16_aitzgorri white
  lomiri-wallpapers-16.04 backgrounds/free_by_Peter_Nerlich.jpg lomiri16_free white
  lomiri-wallpapers-16.04 backgrounds/friends_by_Aitzol_Berasategi.jpg lomiri16_friends white
  lomiri-wallpapers-16.04 backgrounds/greentock_by_Peter_Nerlich.jpg lomiri16_greentock white
  lomiri-wallpapers-16.04 backgrounds/life_by_Aitzol_Berasategi.jpg lomiri16_life white
  lomiri-wallpapers-16.04 backgrounds/picosdeeuropa_by_Aitzol_Berasategi.jpg lomiri16_picosdeeuropa white
  lomiri-wallpapers-16.04 backgrounds/seeding_by_Clements_Engelhardt.jpg lomiri16_seeding white
  lomiri-wallpapers-16.04 backgrounds/sunset_by_Aitzol_Berasategi.jpg lomiri16_sunset white
  lomiri-wallpapers-20.04 backgrounds/Infinite-Sea_by_Aury88.jpg lomiri20_infinite-sea white
  lomiri-wallpapers-20.04 backgrounds/Kleiber_by_Lukas_Baubkus.jpg lomiri20_kleiber white
  mate-backgrounds mate/nature/Aqua.jpg mate_aqua white
  mate-backgrounds mate/nature/Blinds.jpg mate_blinds white
  mate-backgrounds mate/nature/Dune.jpg mate_dune white
  mate-backgrounds mate/nature/FreshFlower.jpg mate_freshflower white
  mate-backgrounds mate/nature/Garden.jpg mate_garden white
  mate-backgrounds mate/nature/GreenMeadow.jpg mate_greenmeadow white
  mate-backgrounds mate/nature/LadyBird.jpg mate_ladybird white
  mate-backgrounds mate/nature/RainDrops.jpg mate_raindrops white
  mate-backgrounds mate/nature/Storm.jpg mate_storm white
  mate-backgrounds mate/nature/TwoWings.jpg mate_twowings white
  mate-backgrounds mate/nature/Wood.jpg mate_wood white
  mate-backgrounds mate/nature/YellowFlower.jpg mate_yellowflower white
  plasma-workspace-wallpapers wallpapers/BytheWater/contents/images/2560x1600.jpg plasma_bythewater white
  plasma-workspace-wallpapers wallpapers/ColdRipple/contents/images/2560x1600.jpg plasma_coldripple white
  plasma-workspace-wallpapers wallpapers/ColorfulCups/contents/images/2560x1600.jpg plasma_colorfulcups white
  plasma-workspace-wallpapers wallpapers/DarkestHour/contents/images/2560x1600.jpg plasma_darkesthour white
  plasma-workspace-wallpapers wallpapers/EveningGlow/contents/images/2560x1600.jpg plasma_eveningglow white
  plasma-workspace-wallpapers wallpapers/FallenLeaf/contents/images/2560x1600.jpg plasma_fallenleaf white
  plasma-workspace-wallpapers wallpapers/Grey/contents/images/2560x1600.jpg plasma_grey white
  plasma-workspace-wallpapers wallpapers/Kite/contents/images/2560x1600.jpg plasma_kite white
  plasma-workspace-wallpapers wallpapers/OneStandsOut/contents/images/2560x1600.jpg plasma_onestandsout white
  plasma-workspace-wallpapers wallpapers/Path/contents/images/2560x1600.jpg plasma_path white
  plasma-workspace-wallpapers wallpapers/summer_1am/contents/images/2560x1600.jpg plasma_summer-1am white
  python3-skimage skimage/data/astronaut.png skimage_astronaut white
  python3-skimage skimage/data/camera.png skimage_camera white
  python3-skimage skimage/data/chelsea.png skimage_chelsea white
  python3-skimage skimage/data/coffee.png skimage_coffee white
  python3-skimage skimage/data/coins.png skimage_coins white
  python3-skimage skimage/data/moon.png skimage_moon white
  python3-skimage skimage/data/motorcycle_left.png skimage_motorcycle white
  python3-skimage skimage/data/retina.jpg skimage_retina white
  python3-skimage skimage/data/ihc.png skimage_ihc white
  python3-skimage skimage/data/page.png skimage_page white
  python3-skimage skimage/data/text.png skimage_text white
  python3-skimage skimage/data/rocket.jpg skimage_rocket white
  python3-skimage skimage/data/hubble_deep_field.jpg skimage_hubble black
  python3-sklearn datasets/images/china.jpg sklearn_china white
  python3-sklearn datasets/images/flower.jpg sklearn_flower white
  python-matplotlib-data sample_data/grace_hopper.jpg mpl_grace-hopper white
  visp-images-data Solvay/Solvay_conference_1927_Version2_1280x881.jpg visp_solvay white
  opencv-doc examples/alphamat/input_images/plant.jpg cv_plant white
  opencv-doc examples/data/aero1.jpg cv_aero1 white
  opencv-doc examples/data/aloeL.jpg cv_aloe white
  opencv-doc examples/data/apple.jpg cv_apple white
  opencv-doc examples/data/baboon.jpg cv_baboon white
  opencv-doc examples/data/basketball1.png cv_basketball white
  opencv-doc examples/data/board.jpg cv_board white
  opencv-doc examples/data/box_in_scene.png cv_box-in-scene white
  opencv-doc examples/data/building.jpg cv_building white
  opencv-doc examples/data/butterfly.jpg cv_butterfly white
  opencv-doc examples/data/chicky_512.png cv_chicky white
  opencv-doc examples/data/ela_original.jpg cv_notebook white
  opencv-doc examples/data/fruits.jpg cv_fruits white
  opencv-doc examples/data/graf1.png cv_graffiti white
  opencv-doc examples/data/home.jpg cv_home white
  opencv-doc examples/data/leuvenA.jpg cv_leuven white
  opencv-doc examples/data/licenseplate_motion.jpg cv_licenseplate white
  opencv-doc examples/data/messi5.jpg cv_messi white
  opencv-doc examples/data/orange.jpg cv_orange white
  opencv-doc examples/data/pca_test1.jpg cv_pca white
  opencv-doc examples/data/rubberwhale1.png cv_rubberwhale white
  opencv-doc examples/data/smarties.png cv_smarties white
  opencv-doc examples/data/squirrel_cls.jpg cv_squirrel white
  opencv-doc examples/data/stuff.jpg cv_stuff white
  opencv-doc examples/hfs/data/000.jpg cv_robin white
  opencv-doc examples/hfs/data/001.jpg cv_lake white
  opencv-doc examples/hfs/data/002.jpg cv_tree white
  opencv-doc examples/reg/home.png cv_brickhouse white
  opencv-doc examples/dnn_superres/butterfly.png cv_monarch white
  opencv-doc examples/text/scenetext01.jpg cv_scenetext01 white
  opencv-doc examples/text/scenetext02.jpg cv_scenetext02 white
  opencv-doc examples/text/scenetext03.jpg cv_scenetext03 white
  opencv-doc examples/text/scenetext04.jpg cv_scenetext04 white
  opencv-doc examples/text/scenetext05.jpg cv_scenetext05 white
  opencv-doc examples/text/scenetext06.jpg cv_scenetext06 white
  stellarium-data nebulae/default/abell33.png neb_abell33 black
  stellarium-data nebulae/default/ic410.png neb_ic410 black
  stellarium-data nebulae/default/m102.png neb_m102 black
  stellarium-data nebulae/default/m36.png neb_m36 black
  stellarium-data nebulae/default/m71.png neb_m71 black
  stellarium-data nebulae/default/n1313.png neb_n1313 black
  stellarium-data nebulae/default/n2158.png neb_n2158 black
  stellarium-data nebulae/default/n2775.png neb_n2775 black
  stellarium-data nebulae/default/n3532.png neb_n3532 black
  stellarium-data nebulae/default/n4450.png neb_n4450 black
  stellarium-data nebulae/default/n5363-vasey.png neb_n5363-vasey black
  stellarium-data nebulae/default/n6352-dss.png neb_n6352-dss black
  stellarium-data nebulae/default/n6752.png neb_n6752 black
  stellarium-data nebulae/default/n7662.png neb_n7662 black
  stellarium-data nebulae/default/sh2-1-2.png neb_sh2-1-2 black
'
# Distractors, same columns. Night skies: an even spread over stellarium's
# nebula textures whose grey thumbnail is not near-uniform (std >= 8 of 255,
# so two black frames never stand for "distinct"), every fourth of the spread
# taken as an original above. ViSP image sequences: frames 40-50 apart, so
# each is a different view of one scene. Textures and one more photograph.
# Left out on purpose: skimage's motorcycle_right and opencv's aloeR (stereo
# partners of originals), leuvenB, graf3, aero3, basketball2, rubberwhale2,
# ela_modified (the same scene as an original, lightly changed).
DISTRACTORS='
  stellarium-data nebulae/default/calabash.png neb_calabash black
  stellarium-data nebulae/default/ic10.png neb_ic10 black
  stellarium-data nebulae/default/ic2177.png neb_ic2177 black
  stellarium-data nebulae/default/ic4601.png neb_ic4601 black
  stellarium-data nebulae/default/ldn673.png neb_ldn673 black
  stellarium-data nebulae/default/lmc_11.png neb_lmc_11 black
  stellarium-data nebulae/default/m12.png neb_m12 black
  stellarium-data nebulae/default/m2.png neb_m2 black
  stellarium-data nebulae/default/m27dumont.png neb_m27dumont black
  stellarium-data nebulae/default/m46.png neb_m46 black
  stellarium-data nebulae/default/m54.png neb_m54 black
  stellarium-data nebulae/default/m62.png neb_m62 black
  stellarium-data nebulae/default/m80.png neb_m80 black
  stellarium-data nebulae/default/m90.png neb_m90 black
  stellarium-data nebulae/default/m99.png neb_m99 black
  stellarium-data nebulae/default/n1433.png neb_n1433 black
  stellarium-data nebulae/default/n1549-dss.png neb_n1549-dss black
  stellarium-data nebulae/default/n1792.png neb_n1792 black
  stellarium-data nebulae/default/n2298-dss.png neb_n2298-dss black
  stellarium-data nebulae/default/n2419-sdss.png neb_n2419-sdss black
  stellarium-data nebulae/default/n253.png neb_n253 black
  stellarium-data nebulae/default/n2936.png neb_n2936 black
  stellarium-data nebulae/default/n3132.png neb_n3132 black
  stellarium-data nebulae/default/n3242.png neb_n3242 black
  stellarium-data nebulae/default/n3690h.png neb_n3690h black
  stellarium-data nebulae/default/n4038-9.png neb_n4038-9 black
  stellarium-data nebulae/default/n4274-dss.png neb_n4274-dss black
  stellarium-data nebulae/default/n4631-vasey.png neb_n4631-vasey black
  stellarium-data nebulae/default/n4755.png neb_n4755 black
  stellarium-data nebulae/default/n5128.png neb_n5128 black
  stellarium-data nebulae/default/n5824-dss.png neb_n5824-dss black
  stellarium-data nebulae/default/n6087.png neb_n6087 black
  stellarium-data nebulae/default/n6235-dss.png neb_n6235-dss black
  stellarium-data nebulae/default/n6441-2mass.png neb_n6441-2mass black
  stellarium-data nebulae/default/n6541-dss.png neb_n6541-dss black
  stellarium-data nebulae/default/n6624-dss.png neb_n6624-dss black
  stellarium-data nebulae/default/n6891.png neb_n6891 black
  stellarium-data nebulae/default/n7006-sdss.png neb_n7006-sdss black
  stellarium-data nebulae/default/n7354.png neb_n7354 black
  stellarium-data nebulae/default/n891.png neb_n891 black
  stellarium-data nebulae/default/p29653.png neb_p29653 black
  stellarium-data nebulae/default/rcw38.png neb_rcw38 black
  stellarium-data nebulae/default/sh2-261.png neb_sh2-261 black
  stellarium-data nebulae/default/u10214.png neb_u10214 black
  stellarium-data nebulae/default/u9749.png neb_u9749 black
  visp-images-data mire-2/image.0001.pgm visp_mire2-0001 white
  visp-images-data mire-2/image.0050.pgm visp_mire2-0050 white
  visp-images-data mire-2/image.0100.pgm visp_mire2-0100 white
  visp-images-data mire-2/image.0150.pgm visp_mire2-0150 white
  visp-images-data mire-2/image.0200.pgm visp_mire2-0200 white
  visp-images-data mire-2/image.0250.pgm visp_mire2-0250 white
  visp-images-data mire-2/image.0300.pgm visp_mire2-0300 white
  visp-images-data mire-2/image.0350.pgm visp_mire2-0350 white
  visp-images-data mire-2/image.0400.pgm visp_mire2-0400 white
  visp-images-data mire-2/image.0450.pgm visp_mire2-0450 white
  visp-images-data mbt/cube/image0000.pgm visp_mbtcube-0000 white
  visp-images-data mbt/cube/image0040.pgm visp_mbtcube-0040 white
  visp-images-data mbt/cube/image0080.pgm visp_mbtcube-0080 white
  visp-images-data mbt/cube/image0120.pgm visp_mbtcube-0120 white
  visp-images-data mbt/cube/image0160.pgm visp_mbtcube-0160 white
  visp-images-data mbt/cube/image0200.pgm visp_mbtcube-0200 white
  visp-images-data ViSP-images/cube/image.0000.pgm visp_cube-0000 white
  visp-images-data ViSP-images/cube/image.0020.pgm visp_cube-0020 white
  visp-images-data ViSP-images/cube/image.0040.pgm visp_cube-0040 white
  visp-images-data ViSP-images/cube/image.0060.pgm visp_cube-0060 white
  visp-images-data ViSP-images/cube/image.0079.pgm visp_cube-0079 white
  visp-images-data AprilTag/AprilTag.pgm visp_apriltag white
  python3-skimage skimage/data/grass.png skimage_grass white
  python3-skimage skimage/data/gravel.png skimage_gravel white
  python3-skimage skimage/data/brick.png skimage_brick white
'

# --- a complete OUT is left alone; an incomplete one of ours is redone ---
if [ -s "$OUT/manifest.tsv" ]; then
  ok=1
  while IFS=$'\t' read -r path _ _; do
    [ -s "$OUT/$path" ] || { ok=0; break; }
  done < "$OUT/manifest.tsv"
  for f in "$OUT"/orig/*.jpg; do
    [ -s "$OUT/1600/$(basename "$f")" ] || { ok=0; break; }
  done
  if [ $ok = 1 ]; then
    echo "photo_set: $OUT is complete ($(wc -l < "$OUT/manifest.tsv") images); nothing to do"
    exit 0
  fi
fi
if [ -e "$OUT" ]; then
  if [ ! -e "$OUT/.photo_set" ] && [ -n "$(ls -A "$OUT" 2>/dev/null)" ]; then
    echo "photo_set: $OUT exists and was not made by this script; remove it or name another" >&2
    exit 1
  fi
  echo "photo_set: $OUT is incomplete; making it again"
  rm -rf "$OUT"
fi
mkdir -p "$OUT"/{orig,var,distract,1600,.work}
touch "$OUT/.photo_set"
W=$OUT/.work

command -v convert >/dev/null || { echo "photo_set: ImageMagick's convert is missing (scripts/setup.sh --bench installs imagemagick)" >&2; exit 1; }
[ -f "$FONT" ] || { echo "photo_set: $FONT is missing (Debian package fonts-dejavu-core)" >&2; exit 1; }

# --- resolve each source through its package's file list ---
# prints "kind<TAB>id<TAB>bg<TAB>package<TAB>file" for each table row
resolve() { # KIND TABLE
  local kind=$1 pkg suffix id bg f
  while read -r pkg suffix id bg; do
    [ -n "$pkg" ] || continue
    if [ ! -f "$W/pkg.$pkg" ]; then
      dpkg-query -L "$pkg" > "$W/pkg.$pkg" 2>/dev/null || {
        echo "photo_set: Debian package $pkg is not installed (scripts/setup.sh --bench installs it)" >&2
        return 1
      }
    fi
    f=$(awk -v s="/$suffix" 'length($0) >= length(s) && substr($0, length($0) - length(s) + 1) == s { print; exit }' "$W/pkg.$pkg")
    if [ -z "$f" ] || [ ! -f "$f" ]; then
      echo "photo_set: Debian package $pkg has no file .../$suffix (another version of it?)" >&2
      return 1
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$kind" "$id" "$bg" "$pkg" "$f"
  done <<< "$2"
}
{ resolve orig "$ORIGINALS"; resolve distract "$DISTRACTORS"; } > "$W/sources.tsv"
dups=$(cut -f2 "$W/sources.tsv" | sort | uniq -d)
[ -z "$dups" ] || { echo "photo_set: ids named twice: $dups" >&2; exit 1; }

# --- normalise: JPEG q92, longest side at most 1600, and a 64-bit aHash ---
normalise() { # KIND ID BG FILE
  local dst=$OUT/$1/$2.jpg
  convert -quiet "$4[0]" -auto-orient -background "$3" -alpha remove -alpha off \
    -resize '1600x1600>' -strip -quality 92 "$dst"
  # aHash: 8x8 grey, one bit per pixel brighter than the mean, as 64 0s and
  # 1s; then the 32x32 grey thumbnail, for the check below
  { convert "$dst" -colorspace Gray -resize '8x8!' -depth 8 gray:- | od -An -v -tu1
    echo x
    convert "$dst" -colorspace Gray -resize '32x32!' -depth 8 gray:- | od -An -v -tu1; } |
    awk -v id="$2" '$1 == "x" { part = 1; next }
      { for (i = 1; i <= NF; i++) if (part) t = t " " $i; else v[n++] = $i }
      END { for (i = 0; i < 64; i++) s += v[i]; m = s / 64; h = "";
            for (i = 0; i < 64; i++) h = h (v[i] > m ? 1 : 0); print id "\t" h "\t" substr(t, 2) }' > "$W/$2.ahash"
}
export -f normalise
export OUT W
cut -f1,2,3,5 "$W/sources.tsv" | tr '\t\n' '\0\0' |
  xargs -0 -n 4 -P 2 bash -c 'normalise "$@"' _

# --- drop an original that is the same picture as an earlier one (a
# wallpaper shipped by two packages): its average hash within Hamming 10 of
# the other's and their 32x32 grey thumbnails correlated at >= 0.98. The hash
# alone is not enough: on this set it puts 20 pairs of plainly different
# photographs within 10 bits (an orange and a Chinese temple at 4, a dozen
# dark night skies); the thumbnails of those correlate at 0.96 at most (two
# night skies, each a bright blob in the middle of black). ---
awk -F'\t' '$1 == "orig" { print $2 }' "$W/sources.tsv" | while read -r id; do cat "$W/$id.ahash"; done |
  awk -F'\t' 'function ham(a, b,  i, n) { n = 0; for (i = 1; i <= 64; i++) n += substr(a, i, 1) != substr(b, i, 1); return n }
    function corr(a, b,  x, y, n, i, sx, sy, sxx, syy, sxy) {
      n = split(a, x, " "); split(b, y, " ")
      for (i = 1; i <= n; i++) { sx += x[i]; sy += y[i]; sxx += x[i] * x[i]; syy += y[i] * y[i]; sxy += x[i] * y[i] }
      sxx -= sx * sx / n; syy -= sy * sy / n; sxy -= sx * sy / n
      return (sxx > 0 && syy > 0) ? sxy / sqrt(sxx * syy) : (sxx == syy) }
    { for (k = 1; k <= nk; k++) { d = ham($2, kh[k]); if (d > 10) continue
        r = corr($3, kt[k]); printf "%s\t%s\t%d\t%.3f\n", $1, kid[k], d, r > "/dev/stderr"
        if (r >= 0.98) { print $1 "\t" kid[k] "\t" d "\t" r; next } }
      nk++; kid[nk] = $1; kh[nk] = $2; kt[nk] = $3 }' > "$W/dropped.tsv" 2> "$W/hash_close.tsv"
while IFS=$'\t' read -r id like d r; do
  echo "photo_set: dropped original $id, the same picture as $like (average hashes $d bits apart, thumbnails r = $r)"
  rm -f "$OUT/orig/$id.jpg"
done < "$W/dropped.tsv"
awk -F'\t' -v dropped="$W/dropped.tsv" \
  'BEGIN { while ((getline l < dropped) > 0) { split(l, f, "\t"); drop[f[1]] = 1 } }
   !($2 in drop) { print $2 "\t" $1 "\t" $4 "\t" $5 }' "$W/sources.tsv" > "$OUT/sources.tsv"
norig=$(ls "$OUT/orig" | wc -l); ndis=$(ls "$OUT/distract" | wc -l)
[ "$norig" -ge 100 ] || { echo "photo_set: only $norig originals (100 wanted)" >&2; exit 1; }
[ "$ndis" -ge 60 ] || { echo "photo_set: only $ndis distractors (60 wanted)" >&2; exit 1; }

# --- variants and the 1600x1200 copy: one convert per original, which
# decodes it once (mpr:o) and writes each variant from that ---
variants() { # ID
  local id=$1 o=$OUT/orig/$1.jpg v=$OUT/var/$1__ w h
  read -r w h < <(identify -format '%w %h\n' "$o")
  # rot3: the largest centred rectangle of the original aspect inside the
  # turned picture is the original scaled by 1/(cos t + (long/short) sin t)
  local geo
  geo=$(awk -v w="$w" -v h="$h" 'BEGIN { pi = atan2(0, -1); t = 3 * pi / 180;
      l = (w > h ? w : h); s = (w > h ? h : w); k = 1 / (cos(t) + l / s * sin(t));
      c9 = sqrt(0.9); c8 = sqrt(0.8);
      printf "%dx%d %dx%d %dx%d %.3f %d %d",
        int(w * c9 + 0.5), int(h * c9 + 0.5), int(w * c8 + 0.5), int(h * c8 + 0.5),
        int(w * k) - 2, int(h * k) - 2, l / 800, int(h / 12 < w / 10 ? h / 12 : w / 10), int(h / 24) }')
  local c90 c80 r3 sigma pt margin
  read -r c90 c80 r3 sigma pt margin <<< "$geo"
  convert "$o" -write mpr:o +delete \
    \( mpr:o -quality 30 -write "${v}q30.jpg" \) +delete \
    \( mpr:o -quality 60 -write "${v}q60.jpg" \) +delete \
    \( mpr:o -resize 50% -quality 90 -write "${v}half.jpg" \) +delete \
    \( mpr:o -resize 25% -quality 90 -write "${v}quarter.jpg" \) +delete \
    \( mpr:o -resize 50% -define png:exclude-chunks=date,time -write "${v}png50.png" \) +delete \
    \( mpr:o -gravity center -crop "$c90+0+0" +repage -quality 90 -write "${v}crop90.jpg" \) +delete \
    \( mpr:o -gravity center -crop "$c80+0+0" +repage -quality 90 -write "${v}crop80.jpg" \) +delete \
    \( mpr:o -modulate 130 -quality 90 -write "${v}bright.jpg" \) +delete \
    \( mpr:o -modulate 70 -quality 90 -write "${v}dark.jpg" \) +delete \
    \( mpr:o -brightness-contrast 0x30 -quality 90 -write "${v}contrast.jpg" \) +delete \
    \( mpr:o -background black -rotate 3 +repage -gravity center -crop "$r3+0+0" +repage -quality 90 -write "${v}rot3.jpg" \) +delete \
    \( mpr:o -gaussian-blur "0x$sigma" -quality 90 -write "${v}blur.jpg" \) +delete \
    \( mpr:o -gravity southeast -font "$FONT" -pointsize "$pt" -fill 'rgba(255,255,255,0.5)' \
       -annotate "+$margin+$margin" '© pixvec 2026' -quality 90 -write "${v}watermark.jpg" \) +delete \
    \( mpr:o -colorspace Gray -quality 90 -write "${v}grey.jpg" \) +delete \
    \( mpr:o -flop -quality 90 -write "${v}mirror.jpg" \) +delete \
    mpr:o -resize '1600x1200!' -quality 90 "$OUT/1600/$id.jpg"
}
export -f variants
ls "$OUT/orig" | sed 's/\.jpg$//' | tr '\n' '\0' | xargs -0 -n 1 -P 2 bash -c 'variants "$1"' _

# --- the manifest, written last: its presence means the set is complete ---
{
  for f in "$OUT"/orig/*.jpg; do
    id=$(basename "$f" .jpg)
    printf 'orig/%s.jpg\t%s\torig\n' "$id" "$id"
    for t in $TRANSFORMS; do
      ext=jpg; [ "$t" = png50 ] && ext=png
      [ -s "$OUT/var/${id}__$t.$ext" ] || { echo "photo_set: ${id}__$t.$ext was not made" >&2; exit 1; }
      printf 'var/%s__%s.%s\t%s\t%s\n' "$id" "$t" "$ext" "$id" "$t"
    done
  done
  for f in "$OUT"/distract/*.jpg; do
    id=$(basename "$f" .jpg)
    printf 'distract/%s.jpg\td:%s\tdistractor\n' "$id" "$id"
  done
} > "$W/manifest.tsv"
rm -f "$W"/*.ahash "$W"/pkg.*
mv "$W/manifest.tsv" "$OUT/manifest.tsv"
nvar=$(ls "$OUT/var" | wc -l)
bypkg=$(awk -F'\t' '$2 == "orig" { n[$3]++ } END { for (p in n) printf "%s%s %d", (k++ ? ", " : ""), p, n[p] }' "$OUT/sources.tsv")
echo "photo_set: $norig originals ($bypkg), $nvar variants, $ndis distractors in $OUT, $(($(date +%s) - t0)) s"
