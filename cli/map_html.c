/*
 * map_html.c - the map of a collection as one interactive HTML page
 * (`pixvec map DB --html FILE`, cli room; declared in plot.h).
 *
 * The page draws every point of the layout on a <canvas>, coloured by
 * label, with a legend (colour, label, count; a click hides or shows a
 * label), the title and the parameters; the wheel zooms about the pointer,
 * a drag pans, and for a 3-D layout a right-drag or shift-drag turns the
 * cloud (an orthographic view of the rotated points). Hovering a point
 * shows a card with its thumbnail and path; a click opens the original
 * through its file:// URL. A double-click resets the view.
 *
 * Design: everything is inline (CSS, script, data), so the page opens from
 * disk with no network; the thumbnails are files in the folder beside the
 * page that report.c names and fills ("map.html" gets "map_files/N.jpg",
 * N the point's index), made by pv_thumbnail on one thread per core, one
 * per point, since a user may hover anywhere. They are small (MAP_THUMB_SIDE)
 * and fetched only when hovered. The points travel as one JSON document in
 * a <script type="application/json"> (JSON.parse is the fastest way a
 * browser reads bulk data): coordinates centred and scaled to integers in
 * [-MAP_SCALE, MAP_SCALE], label numbers, and paths split into a table of
 * folders and a file name per point (a collection has few folders, so this
 * about halves the bytes of 70,000 paths). Every '<', '>' and '&' in a
 * string is written as \u003c, \u003e, \u0026, so no text can close the
 * script element ("</script>") or open a comment. Links are percent-encoded
 * by the page's script from the path's UTF-8 bytes, by the rule report.c's
 * cli_url_esc follows; a path that is not valid UTF-8 (a browser would show
 * it with U+FFFD) gets its exact URL written out by C instead, and a path
 * that is not plain (cli/names.h: not UTF-8, a control byte) is shown in
 * its quoted form, given as "show", the form every output uses.
 *
 * Hover: a grid of 12-pixel screen cells, each a chain of the points in it
 * (built after a redraw, on the next pointer move: one pass over the
 * points), so the nearest point within a few pixels is found by looking at
 * 3 x 3 cells, whatever the number of points; drawing batches each label's
 * points into one path and one fill.
 *
 * Colours and legend follow the PNG (cli/draw.c), so the two agree: its
 * palette (matplotlib's tab10 without the grey, then ten colours far apart
 * in CIELAB; report.c's cli_palette holds the same values), given to labels
 * by cli_label_colours (past 20 labels the 20 most populous keep colours,
 * the rest are grey), legend rows by name; a 3-D map opens at the PNG's
 * oblique view (azimuth 35 degrees, elevation 25). Points are drawn in
 * eight hashed chunks per label, interleaved, so no label lies wholly on
 * top of another (the PNG shuffles its drawing order).
 *
 * "#selftest" in the URL makes the page, once drawn, record in
 * <div id="selftest"> the points drawn, the result of a synthetic hover over
 * point 0 (index, path, link, thumbnail loaded) and the points drawn with
 * point 0's label hidden and shown again: tests/test_map_html.c reads them
 * from chromium's DOM dump.
 */
#include "plot.h"
#include "names.h"
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAP_THUMB_SIDE 128 /* longer side of a hover thumbnail, pixels */
#define MAP_SCALE 30000    /* coordinates as integers in [-MAP_SCALE, MAP_SCALE] */

static const char map_css[] =
    "*{box-sizing:border-box}\n"
    "html,body{margin:0;height:100%;overflow:hidden;background:#fff;color:#1f2328;"
    "font:13px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif}\n"
    "canvas{position:absolute;left:0;top:0;width:100%;height:100%;display:block}\n"
    "#hl{pointer-events:none}\n"
    "header{position:absolute;left:12px;top:10px;max-width:calc(100% - 300px);"
    "background:rgba(255,255,255,.85);border-radius:6px;padding:6px 10px;"
    "pointer-events:none}\n"
    "h1{margin:0;font-size:18px;font-weight:600}\n"
    ".sub{margin:2px 0 0;color:#57606a}\n"
    ".hint{margin:4px 0 0;color:#57606a;font-size:12px}\n"
    "#legend{position:absolute;right:10px;top:10px;max-height:calc(100% - 20px);"
    "overflow:auto;min-width:180px;max-width:280px;background:rgba(255,255,255,.92);"
    "border:1px solid #d0d7de;border-radius:8px;padding:6px 8px}\n"
    "#legend .tools{display:flex;gap:6px;margin-bottom:4px}\n"
    "#legend button{font:inherit;font-size:11px;padding:1px 8px;border:1px solid #d0d7de;"
    "border-radius:4px;background:#f6f8fa;cursor:pointer}\n"
    ".item{display:flex;align-items:center;gap:6px;padding:1px 2px;cursor:pointer;"
    "border-radius:4px;user-select:none}\n"
    ".item:hover{background:#eaeef2}\n"
    ".item.off{opacity:.35}\n"
    ".sw{flex:none;width:12px;height:12px;border-radius:50%}\n"
    ".name{flex:1;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}\n"
    ".count{color:#57606a;font-variant-numeric:tabular-nums}\n"
    "#card{position:absolute;display:none;pointer-events:none;width:200px;"
    "background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:8px;"
    "box-shadow:0 4px 14px rgba(0,0,0,.18)}\n"
    "#card .box{width:182px;height:182px;display:flex;align-items:center;"
    "justify-content:center;background:#eaeef2;border-radius:4px;overflow:hidden}\n"
    /* small images (28 x 28) shown scaled up, sharp */
    "#card img{width:182px;height:182px;object-fit:contain;image-rendering:pixelated;"
    "display:block}\n"
    "#card .missing{padding:8px;font-size:12px;color:#cf222e;text-align:center;"
    "overflow-wrap:anywhere}\n"
    "#card .lab{margin-top:6px;padding-left:6px;border-left:4px solid #999;font-weight:600}\n"
    "#card .lab:empty{display:none}\n"
    "#card .path{margin-top:4px;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"
    "monospace;font-size:11px;overflow-wrap:anywhere;color:#0969da}\n";

static const char map_js[] =
    "(function(){\n"
    "'use strict';\n"
    "var D=JSON.parse(document.getElementById('pv-data').textContent);\n"
    "var N=D.n,S=D.scale,dims=D.dims,nl=D.labels.length;\n"
    "var COL=D.col; /* label k's colour, as in the PNG (cli_label_colours) */\n"
    "var X=new Float32Array(N),Y=new Float32Array(N),Z=new Float32Array(N);\n"
    "var SX=new Float32Array(N),SY=new Float32Array(N),i,k;\n"
    "/* Each label's points in CH chunks by a hash of the index, drawn chunk by\n"
    " * chunk across the labels: one fill per chunk and label, yet no label lies\n"
    " * wholly on top of another (the PNG draws in a shuffled order). */\n"
    "var CH=8,byL=[],hidden=new Uint8Array(nl),c;\n"
    "for(k=0;k<nl;k++){byL.push([]);for(c=0;c<CH;c++)byL[k].push([]);}\n"
    "for(i=0;i<N;i++){X[i]=D.x[i]/S;Y[i]=D.y[i]/S;if(dims===3)Z[i]=D.z[i]/S;\n"
    "byL[D.l?D.l[i]:0][Math.imul(i,2654435761)>>>29].push(i);}\n"
    "var cv=document.getElementById('map'),cx=cv.getContext('2d');\n"
    "var hl=document.getElementById('hl'),hx=hl.getContext('2d');\n"
    "var card=document.getElementById('card'),cimg=card.querySelector('img');\n"
    "var cpath=card.querySelector('.path'),clab=card.querySelector('.lab');\n"
    "var cmiss=card.querySelector('.missing');\n"
    "var W=0,H=0,dpr=1,zoom=1,tx=0,ty=0,R=[1,0,0,0,1,0,0,0,1];\n"
    "var drawn=0,hover=-1,pending=false,gridOk=false;\n"
    "var CELL=12,gcols=0,grows=0,head=null,next=new Int32Array(N);\n"
    "function size(){dpr=window.devicePixelRatio||1;W=cv.clientWidth;H=cv.clientHeight;\n"
    "[cv,hl].forEach(function(c){c.width=Math.round(W*dpr);c.height=Math.round(H*dpr);});}\n"
    "function base(){return Math.min(W,H)*0.46*zoom;}\n"
    "/* Disc radius and opacity fall with the number of points, as in the PNG\n"
    " * (cli/draw.c); zooming in grows the discs a little. */\n"
    "var ALPHA=Math.min(0.9,Math.max(0.35,0.9-0.2*Math.log10(Math.max(1,N/1000))));\n"
    "function rad(){var r=Math.min(6,Math.max(0.9,Math.sqrt(0.35*W*H/(Math.PI*Math.max(N,1)))));\n"
    "return Math.min(r*Math.sqrt(zoom),3*r);}\n"
    "function project(){var b=base(),ox=W/2+tx,oy=H/2+ty;\n"
    "for(var i=0;i<N;i++){var x=X[i],y=Y[i];\n"
    "if(dims===3){var z=Z[i];x=R[0]*X[i]+R[1]*Y[i]+R[2]*z;y=R[3]*X[i]+R[4]*Y[i]+R[5]*z;}\n"
    "SX[i]=ox+b*x;SY[i]=oy-b*y;}}\n"
    "function draw(){pending=false;project();var r=rad(),round=N<=20000,k,j,i,x,y,m;\n"
    "cx.setTransform(dpr,0,0,dpr,0,0);cx.clearRect(0,0,W,H);cx.globalAlpha=ALPHA;drawn=0;\n"
    "for(var c=0;c<CH;c++)for(k=0;k<nl;k++){if(hidden[k])continue;m=byL[k][c];cx.fillStyle=COL[k];cx.beginPath();\n"
    "for(j=0;j<m.length;j++){i=m[j];x=SX[i];y=SY[i];\n"
    "if(x<-r||y<-r||x>W+r||y>H+r)continue;drawn++;\n"
    "if(round){cx.moveTo(x+r,y);cx.arc(x,y,r,0,6.2832);}else cx.rect(x-r,y-r,2*r,2*r);}\n"
    "cx.fill();}\n"
    "gridOk=false;ring();}\n"
    "function later(){if(!pending){pending=true;requestAnimationFrame(draw);}}\n"
    "/* Screen-space grid of CELL px cells, chained through next[]: a hover looks\n"
    " * at the 3x3 cells around the pointer only. Rebuilt after a draw, when the\n"
    " * pointer next moves. */\n"
    "function grid(){gcols=Math.ceil(W/CELL)+1;grows=Math.ceil(H/CELL)+1;\n"
    "head=new Int32Array(gcols*grows).fill(-1);\n"
    "for(var k=0;k<nl;k++)for(var c=0;c<CH;c++){if(hidden[k])continue;var m=byL[k][c];\n"
    "for(var j=0;j<m.length;j++){var i=m[j],x=SX[i],y=SY[i];\n"
    "if(x<0||y<0||x>=W||y>=H)continue;var c=Math.floor(y/CELL)*gcols+Math.floor(x/CELL);\n"
    "next[i]=head[c];head[c]=i;}}gridOk=true;}\n"
    "function nearest(mx,my){if(!gridOk)grid();var lim=Math.max(6,rad()+3),best=-1,bd=lim*lim;\n"
    "var c0=Math.floor(mx/CELL),r0=Math.floor(my/CELL);\n"
    "for(var r=r0-1;r<=r0+1;r++){if(r<0||r>=grows)continue;\n"
    "for(var c=c0-1;c<=c0+1;c++){if(c<0||c>=gcols)continue;\n"
    "for(var i=head[r*gcols+c];i>=0;i=next[i]){var dx=SX[i]-mx,dy=SY[i]-my,d=dx*dx+dy*dy;\n"
    "if(d<bd||(d===bd&&i<best)){bd=d;best=i;}}}}return best;}\n"
    "function path(i){return D.dirs[D.d[i]]+D.f[i];}\n"
    "function shown(i){return D.show&&D.show[i]!==undefined?D.show[i]:path(i);}\n"
    "var enc=new TextEncoder();\n"
    "/* As report.c's url_esc: '/' and RFC 3986 unreserved stay, other bytes %XX. */\n"
    "function url(i){if(D.raw&&D.raw[i])return D.raw[i];var b=enc.encode(path(i)),s='file://';\n"
    "for(var j=0;j<b.length;j++){var c=b[j];\n"
    "if((c>=65&&c<=90)||(c>=97&&c<=122)||(c>=48&&c<=57)||c===45||c===46||c===95||c===126||c===47)\n"
    "s+=String.fromCharCode(c);else s+='%'+(c<16?'0':'')+c.toString(16).toUpperCase();}return s;}\n"
    "function ring(){hx.setTransform(dpr,0,0,dpr,0,0);hx.clearRect(0,0,W,H);if(hover<0)return;\n"
    "hx.lineWidth=2;hx.strokeStyle='#111';hx.beginPath();hx.arc(SX[hover],SY[hover],rad()+4,0,6.2832);hx.stroke();}\n"
    "function show(i,mx,my){if(i!==hover){hover=i;ring();\n"
    "if(i<0){card.style.display='none';cv.style.cursor='';return;}\n"
    "cv.style.cursor='pointer';var bad=D.bad&&D.bad[i];\n"
    "cimg.style.display=bad?'none':'';cmiss.style.display=bad?'':'none';\n"
    "if(bad)cmiss.textContent='no thumbnail: '+bad;else cimg.src=D.thumbs+'/'+i+'.jpg';\n"
    "cpath.textContent=shown(i);clab.textContent=nl>1?D.labels[D.l[i]]:'';\n"
    "clab.style.borderColor=COL[D.l?D.l[i]:0];card.style.display='block';}\n"
    "if(i>=0)place(mx,my);}\n"
    "/* The card beside (mx, my), inside the window. */\n"
    "function place(mx,my){var w=card.offsetWidth,h=card.offsetHeight,x=mx+16,y=my+16;\n"
    "if(x+w>W-4)x=Math.max(4,mx-16-w);if(y+h>H-4)y=Math.max(4,H-4-h);\n"
    "card.style.left=x+'px';card.style.top=y+'px';}\n"
    "/* Pointer: drag pans; right-drag or shift-drag turns a 3-D map; the wheel\n"
    " * zooms about the pointer; a click on a point opens the original. */\n"
    "var drag=null;\n"
    "function pos(e){var b=cv.getBoundingClientRect();return[e.clientX-b.left,e.clientY-b.top];}\n"
    "cv.addEventListener('contextmenu',function(e){e.preventDefault();});\n"
    "cv.addEventListener('mousedown',function(e){var p=pos(e);\n"
    "drag={x:p[0],y:p[1],x0:p[0],y0:p[1],turn:dims===3&&(e.button===2||e.shiftKey),moved:false};\n"
    "e.preventDefault();});\n"
    "window.addEventListener('mousemove',function(e){var p=pos(e);\n"
    "if(drag){var dx=p[0]-drag.x,dy=p[1]-drag.y;drag.x=p[0];drag.y=p[1];\n"
    "if(Math.abs(p[0]-drag.x0)+Math.abs(p[1]-drag.y0)>3)drag.moved=true;\n"
    "if(!drag.moved)return;show(-1);\n"
    "if(drag.turn)turn(dx*0.01,dy*0.01);else{tx+=dx;ty+=dy;}later();return;}\n"
    "if(e.target!==cv){show(-1);return;}show(nearest(p[0],p[1]),p[0],p[1]);});\n"
    "window.addEventListener('mouseup',function(e){var d=drag;drag=null;\n"
    "if(d&&!d.moved&&e.button===0&&hover>=0)window.open(url(hover),'_blank');});\n"
    "cv.addEventListener('wheel',function(e){e.preventDefault();var p=pos(e),b=base();\n"
    "var wx=(p[0]-W/2-tx)/b,wy=(p[1]-H/2-ty)/b;\n"
    "zoom=Math.min(2000,Math.max(0.2,zoom*Math.exp(-e.deltaY*(e.deltaMode?0.05:0.0015))));\n"
    "b=base();tx=p[0]-W/2-wx*b;ty=p[1]-H/2-wy*b;show(-1);later();},{passive:false});\n"
    "/* The first view; a 3-D map starts from the PNG's oblique view (azimuth\n"
    " * 35 degrees, elevation 25). */\n"
    "function home(){zoom=1;tx=ty=0;R=[1,0,0,0,1,0,0,0,1];if(dims===3)turn(0.6109,0.4363);}\n"
    "cv.addEventListener('dblclick',function(){home();later();});\n"
    "/* A turn of a about the screen's vertical axis and b about its horizontal\n"
    " * one, applied after R (orthographic view along the rotated z). */\n"
    "function turn(a,b){var ca=Math.cos(a),sa=Math.sin(a),cb=Math.cos(b),sb=Math.sin(b);\n"
    "var M=[ca,0,sa, sa*sb,cb,-ca*sb, -sa*cb,sb,ca*cb],Q=[],r,c;\n"
    "for(r=0;r<3;r++)for(c=0;c<3;c++)Q.push(M[r*3]*R[c]+M[r*3+1]*R[3+c]+M[r*3+2]*R[6+c]);R=Q;}\n"
    "/* The legend: a click hides or shows a label. */\n"
    "var leg=document.getElementById('legend');\n"
    "function toggle(k){hidden[k]^=1;leg.querySelector('.item[data-label=\"'+k+'\"]').classList.toggle('off',!!hidden[k]);\n"
    "show(-1);draw();}\n"
    "leg.querySelectorAll('.item').forEach(function(el){el.addEventListener('click',function(){toggle(+el.dataset.label);});});\n"
    "leg.querySelectorAll('button').forEach(function(b){b.addEventListener('click',function(){\n"
    "var v=b.dataset.all==='1'?0:1;for(var k=0;k<nl;k++)if(hidden[k]!==v)toggle(k);});});\n"
    "/* A new window size moves every point: the card follows its point. */\n"
    "window.addEventListener('resize',function(){size();draw();if(hover>=0)place(SX[hover],SY[hover]);});\n"
    "home();size();var t0=performance.now();draw();var t1=performance.now();\n"
    "document.body.dataset.drawn=drawn;\n"
    "/* \"#selftest\": record what a test needs in #selftest: points drawn, a\n"
    " * synthetic hover over point 0 (index, path, link, thumbnail loaded), and\n"
    " * a legend toggle of point 0's label. */\n"
    "if(location.hash==='#selftest'&&N>0){var st=document.getElementById('selftest'),b=cv.getBoundingClientRect();\n"
    "st.dataset.drawMs=(t1-t0).toFixed(1);t0=performance.now();\n"
    "for(i=0;i<1000;i++)nearest(SX[i%N]+1,SY[i%N]-1);st.dataset.hover1000Ms=((performance.now()-t0)).toFixed(1);\n"
    "st.dataset.drawn=drawn;var k0=D.l?D.l[0]:0;\n"
    "toggle(k0);st.dataset.drawnHidden=drawn;toggle(k0);st.dataset.drawnShown=drawn;\n"
    "cv.dispatchEvent(new MouseEvent('mousemove',{clientX:b.left+SX[0],clientY:b.top+SY[0],bubbles:true}));\n"
    "var h0=hover;st.dataset.hover=h0;st.dataset.path=cpath.textContent;st.dataset.url=h0>=0?url(h0):'';\n"
    "st.dataset.card=card.style.display;\n"
    "function done(v){st.dataset.thumb=v;st.dataset.thumbWidth=cimg.naturalWidth;\n"
    "st.dataset.thumbSrc=cimg.getAttribute('src')||'';st.dataset.done='1';}\n"
    "if(h0<0)done('nohover');else if(D.bad&&D.bad[h0])done('none');\n"
    "else if(cimg.complete&&cimg.naturalWidth>0)done('loaded');\n"
    "else{cimg.addEventListener('load',function(){done('loaded');});\n"
    "cimg.addEventListener('error',function(){done('error');});}}\n"
    "})();\n";

/* ---- JSON inside <script> ------------------------------------------------ */

/* len bytes of s as the inside of a JSON string: quote, backslash and
 * control bytes escaped as JSON requires, '<', '>' and '&' as \u escapes
 * (nothing can end the script element), U+2028 and U+2029 too (older
 * JavaScript parsers took them for line ends). Other bytes, UTF-8 included,
 * as they are. */
static void js_chars(FILE *f, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i;

    for (i = 0; i < len; i++) {
        unsigned c = p[i];
        if (c == '"' || c == '\\') {
            fputc('\\', f);
            fputc((int)c, f);
        } else if (c < 0x20 || c == 0x7f || c == '<' || c == '>' || c == '&') {
            fprintf(f, "\\u%04x", c);
        } else if (c == 0xe2 && i + 2 < len && p[i + 1] == 0x80 &&
                   (p[i + 2] == 0xa8 || p[i + 2] == 0xa9)) {
            fprintf(f, "\\u%04x", p[i + 2] == 0xa8 ? 0x2028u : 0x2029u);
            i += 2;
        } else {
            fputc((int)c, f);
        }
    }
}

static void js_str(FILE *f, const char *s)
{
    fputc('"', f);
    js_chars(f, s ? s : "", s ? strlen(s) : 0);
    fputc('"', f);
}

/* len bytes of a path's part (a folder, a file name) inside a JSON string:
 * exact when valid UTF-8, else with \xHH for the bytes that are not
 * (names.h), so the document stays valid. The script joins the parts back
 * into the exact path for a link; a path that is not valid UTF-8 gets its
 * link from "raw" instead, and one that is not plain its shown text (the
 * quoted form) from "show". */
static void js_part(FILE *f, const char *s, size_t len)
{
    size_t i = 0, k;

    while (i < len) {
        k = cli_utf8_len((const unsigned char *)s + i, len - i);
        if (k == 0) {
            fprintf(f, "\\\\x%02x", (unsigned char)s[i]); /* \\ is JSON's backslash */
            i++;
        } else {
            js_chars(f, s + i, k);
            i += k;
        }
    }
}

/* A name's text form (names.h), what the page shows, as a JSON string. */
static void js_name(FILE *f, const char *name)
{
    char *t = cli_name_text(name);

    js_str(f, t ? t : "\"?\"");
    free(t);
}

/* ---- the folder table ------------------------------------------------------ */

typedef struct map_dir {
    const char *path;
    size_t len;   /* bytes of its folder part, up to and with the last '/' */
    uint32_t idx; /* the point */
} map_dir;

static int map_dir_cmp(const void *a, const void *b)
{
    const map_dir *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->path, y->path, n);

    if (c != 0)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Number the distinct folders of the paths: *sorted holds the points by
 * folder, (*dir_of)[i] is point i's folder number, in sorted order.
 * Returns the number of folders, or -1 out of memory (the caller frees
 * both arrays either way). */
static long map_dirs(const cli_scatter *s, map_dir **sorted, uint32_t **dir_of)
{
    size_t i;
    long nd = 0;

    *sorted = calloc(s->n > 0 ? s->n : 1, sizeof **sorted);
    *dir_of = calloc(s->n > 0 ? s->n : 1, sizeof **dir_of);
    if (*sorted == NULL || *dir_of == NULL)
        return -1;
    for (i = 0; i < s->n; i++) {
        const char *p = s->paths[i], *slash = strrchr(p, '/');
        (*sorted)[i].path = p;
        (*sorted)[i].len = slash ? (size_t)(slash - p) + 1 : 0;
        (*sorted)[i].idx = (uint32_t)i;
    }
    qsort(*sorted, s->n, sizeof **sorted, map_dir_cmp);
    for (i = 0; i < s->n; i++) {
        const map_dir *m = &(*sorted)[i];
        if (i > 0 && (m->len != m[-1].len || memcmp(m->path, m[-1].path, m->len) != 0))
            nd++;
        (*dir_of)[m->idx] = (uint32_t)nd;
    }
    return s->n > 0 ? nd + 1 : 0;
}

/* ---- checks and coordinates ------------------------------------------------ */

static int map_check(const cli_scatter *s, const char *dst, char *err, size_t errlen)
{
    size_t i;

    if (s == NULL || dst == NULL || dst[0] == '\0') {
        cli_page_err(err, errlen, "map page: no points or no file given");
        return PV_EINVAL;
    }
    if (s->dims != 2 && s->dims != 3) {
        cli_page_err(err, errlen, "%s: a map has 2 or 3 dimensions, not %d", dst, s->dims);
        return PV_EINVAL;
    }
    if (s->n > 0 && (s->xyz == NULL || s->paths == NULL)) {
        cli_page_err(err, errlen, "%s: points without coordinates or paths", dst);
        return PV_EINVAL;
    }
    if (s->n > UINT32_MAX || (size_t)s->dims * s->n / (size_t)s->dims != s->n) {
        cli_page_err(err, errlen, "%s: too many points (%zu)", dst, s->n);
        return PV_EINVAL;
    }
    if (s->label != NULL && s->nlabels == 0) {
        cli_page_err(err, errlen, "%s: labels given but no label names", dst);
        return PV_EINVAL;
    }
    for (i = 0; i < s->n; i++) {
        int d;
        if (s->label != NULL && s->label[i] >= s->nlabels) {
            cli_page_err(err, errlen, "%s: point %zu has label %u of %u", dst, i,
                    s->label[i], s->nlabels);
            return PV_EINVAL;
        }
        if (s->paths[i] == NULL) {
            cli_page_err(err, errlen, "%s: point %zu has no path", dst, i);
            return PV_EINVAL;
        }
        for (d = 0; d < s->dims; d++)
            if (!isfinite(s->xyz[i * (size_t)s->dims + (size_t)d])) {
                cli_page_err(err, errlen, "%s: point %zu (%s) has a non-finite coordinate",
                        dst, i, s->paths[i]);
                return PV_ENUMERIC;
            }
    }
    return PV_OK;
}

/* The centre of the points' bounding box and the scale that brings them
 * into [-1, 1]: one scale for every axis (the layout's proportions kept);
 * in 3-D the largest distance from the centre, so that no turn takes a
 * point out of that range. */
static void map_frame(const cli_scatter *s, double centre[3], double *half)
{
    double lo[3] = {0, 0, 0}, hi[3] = {0, 0, 0};
    size_t i;
    int d, dims = s->dims;

    for (i = 0; i < s->n; i++)
        for (d = 0; d < dims; d++) {
            double v = s->xyz[i * (size_t)dims + (size_t)d];
            if (i == 0 || v < lo[d])
                lo[d] = v;
            if (i == 0 || v > hi[d])
                hi[d] = v;
        }
    *half = 0;
    for (d = 0; d < 3; d++) {
        centre[d] = d < dims ? (lo[d] + hi[d]) / 2 : 0;
        if (dims == 2 && (hi[d] - lo[d]) / 2 > *half)
            *half = (hi[d] - lo[d]) / 2;
    }
    for (i = 0; dims == 3 && i < s->n; i++) {
        double r2 = 0;
        for (d = 0; d < 3; d++) {
            double v = s->xyz[i * 3 + (size_t)d] - centre[d];
            r2 += v * v;
        }
        if (sqrt(r2) > *half)
            *half = sqrt(r2);
    }
    if (!(*half > 0) || !isfinite(*half))
        *half = 1; /* one point, or all at one place */
}

/* ---- the page ---------------------------------------------------------------- */

/* A label's name: its own, "label K" when it has none, "images" when the
 * points have no labels. */
static const char *label_name(const cli_scatter *s, uint32_t k, char *buf, size_t len)
{
    if (s->label == NULL)
        return "images";
    if (s->label_names != NULL && s->label_names[k] != NULL)
        return s->label_names[k];
    snprintf(buf, len, "label %u", k);
    return buf;
}

static void write_axis(FILE *f, const cli_scatter *s, int d, const double centre[3],
                       double half)
{
    size_t i;

    for (i = 0; i < s->n; i++) {
        double v = (s->xyz[i * (size_t)s->dims + (size_t)d] - centre[d]) / half;
        fprintf(f, i ? ",%ld" : "%ld", lround(v * MAP_SCALE));
    }
}

/* The JSON document of the points (see the file's opening comment). */
static void write_data(FILE *f, const cli_scatter *s, const cli_page *pg,
                       const cli_thumb *thumbs, const map_dir *sorted,
                       const uint32_t *dir_of, long ndirs, const size_t *counts,
                       const char *const *colour, uint32_t nl)
{
    static const char axis[3] = {'x', 'y', 'z'};
    double centre[3], half;
    size_t i;
    long j;
    uint32_t k;
    int d, sep;

    map_frame(s, centre, &half);
    fprintf(f, "{\"n\":%zu,\"dims\":%d,\"scale\":%d,\"thumbs\":\"", s->n, s->dims,
            MAP_SCALE);
    cli_url_esc(f, pg->base); /* only URL-safe bytes: nothing to escape for JSON */
    fputs("\",\n\"labels\":[", f);
    for (k = 0; k < nl; k++) {
        char buf[32];
        fputs(k ? "," : "", f);
        js_name(f, label_name(s, k, buf, sizeof buf));
    }
    fputs("],\n\"col\":[", f);
    for (k = 0; k < nl; k++)
        fprintf(f, k ? ",\"%s\"" : "\"%s\"", colour[k]);
    fputs("],\n\"counts\":[", f);
    for (k = 0; k < nl; k++)
        fprintf(f, k ? ",%zu" : "%zu", counts[k]);
    fputs("],\n\"dirs\":[", f);
    /* Folder j is named by the first sorted entry of its run. */
    for (i = 0, j = 0; i < s->n && j < ndirs; i++) {
        const map_dir *m = &sorted[i];
        if (dir_of[m->idx] != (uint32_t)j)
            continue;
        fputs(j ? ",\n\"" : "\"", f);
        if (m->path[0] != '/' && pg->cwd != NULL) {
            js_chars(f, pg->cwd, strlen(pg->cwd));
            fputc('/', f);
        }
        js_part(f, m->path, m->len);
        fputc('"', f);
        j++;
    }
    for (d = 0; d < s->dims; d++) {
        fprintf(f, "],\n\"%c\":[", axis[d]);
        write_axis(f, s, d, centre, half);
    }
    fputs("],\n\"l\":", f);
    if (s->label != NULL) {
        fputc('[', f);
        for (i = 0; i < s->n; i++)
            fprintf(f, i ? ",%u" : "%u", s->label[i]);
        fputc(']', f);
    } else {
        fputs("null", f);
    }
    fputs(",\n\"d\":[", f);
    for (i = 0; i < s->n; i++)
        fprintf(f, i ? ",%u" : "%u", dir_of[i]);
    fputs("],\n\"f\":[", f);
    for (i = 0; i < s->n; i++) {
        const char *slash = strrchr(s->paths[i], '/'), *name = slash ? slash + 1 : s->paths[i];
        fputs(i ? (i % 8 ? "," : ",\n") : "", f);
        fputc('"', f);
        js_part(f, name, strlen(name));
        fputc('"', f);
    }
    /* Thumbnails that could not be made: their reasons. */
    fputs("],\n\"bad\":{", f);
    for (i = 0, sep = 0; i < s->n; i++)
        if (thumbs[i].rc != PV_OK) {
            fprintf(f, "%s\"%zu\":", sep++ ? "," : "", i);
            js_str(f, cli_thumb_reason(&thumbs[i]));
        }
    /* Paths a browser would not decode byte for byte: their links. */
    fputs("},\n\"raw\":{", f);
    for (i = 0, sep = 0; i < s->n; i++)
        if (!cli_utf8_valid(s->paths[i])) {
            fprintf(f, "%s\"%zu\":\"", sep++ ? "," : "", i);
            cli_file_url(f, s->paths[i], pg->cwd);
            fputc('"', f);
        }
    /* Paths that are not plain (names.h): the text the card shows. */
    fputs("},\n\"show\":{", f);
    for (i = 0, sep = 0; i < s->n; i++)
        if (!cli_name_is_plain(s->paths[i])) {
            fprintf(f, "%s\"%zu\":", sep++ ? "," : "", i);
            js_name(f, s->paths[i]);
        }
    fputs("}}", f);
}

/* A legend row; rows go by name as the PNG's do (nameless ones first). */
typedef struct legend_row {
    const char *name; /* NULL: none */
    uint32_t label;
} legend_row;

static int legend_cmp(const void *a, const void *b)
{
    const legend_row *x = a, *y = b;
    int c = strcmp(x->name ? x->name : "", y->name ? y->name : "");

    return c != 0 ? c : (x->label > y->label) - (x->label < y->label);
}

/* Legend rows for every label with points; rows has room for nl. */
static void write_legend(FILE *f, const cli_scatter *s, const size_t *counts,
                         const char *const *colour, uint32_t nl, legend_row *rows)
{
    uint32_t k, m = 0;
    char buf[32];

    for (k = 0; k < nl; k++)
        if (counts[k] > 0)
            rows[m++] = (legend_row){s->label && s->label_names ? s->label_names[k] : NULL, k};
    qsort(rows, m, sizeof *rows, legend_cmp);
    fputs("<div id=\"legend\">\n", f);
    if (m > 1)
        fputs("<div class=\"tools\"><button data-all=\"1\">show all</button>"
              "<button data-all=\"0\">hide all</button></div>\n", f);
    for (k = 0; k < m; k++) {
        uint32_t l = rows[k].label;
        fprintf(f, "<div class=\"item\" data-label=\"%u\"><span class=\"sw\" "
                   "style=\"background:%s\"></span><span class=\"name\">",
                l, colour[l]);
        cli_html_name(f, label_name(s, l, buf, sizeof buf));
        fprintf(f, "</span><span class=\"count\">%zu</span></div>\n", counts[l]);
    }
    fputs("</div>\n", f);
}

static void write_page(FILE *f, const cli_scatter *s, const cli_page *pg,
                       const cli_thumb *thumbs, const map_dir *sorted,
                       const uint32_t *dir_of, long ndirs, const size_t *counts,
                       const char *const *colour, uint32_t nl, legend_row *rows)
{
    const char *title = s->title ? s->title : "pixvec map";

    fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
          "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
          "<meta name=\"generator\" content=\"pixvec\">\n<title>", f);
    cli_html_esc(f, title);
    fprintf(f, "</title>\n<style>\n%s</style>\n</head>\n", map_css);
    fprintf(f, "<body data-points=\"%zu\" data-dims=\"%d\">\n", s->n, s->dims);
    fputs("<canvas id=\"map\"></canvas><canvas id=\"hl\"></canvas>\n<header><h1>", f);
    cli_html_esc(f, title);
    fputs("</h1>\n", f);
    if (s->subtitle != NULL && s->subtitle[0] != '\0') {
        fputs("<p class=\"sub\">", f);
        cli_html_esc(f, s->subtitle);
        fputs("</p>\n", f);
    }
    fprintf(f, "<p class=\"hint\">%zu points &middot; wheel: zoom &middot; drag: pan", s->n);
    if (s->dims == 3)
        fputs(" &middot; right-drag or shift-drag: turn", f);
    fputs(" &middot; hover: the image &middot; click: open it &middot; double-click: "
          "reset</p>\n<noscript><p>The map needs JavaScript.</p></noscript>\n</header>\n", f);
    write_legend(f, s, counts, colour, nl, rows);
    fputs("<div id=\"card\"><div class=\"box\"><img alt=\"\"><div class=\"missing\"></div>"
          "</div><div class=\"lab\"></div><div class=\"path\"></div></div>\n"
          "<div id=\"selftest\" hidden></div>\n"
          "<script id=\"pv-data\" type=\"application/json\">", f);
    write_data(f, s, pg, thumbs, sorted, dir_of, ndirs, counts, colour, nl);
    fprintf(f, "</script>\n<script>\n%s</script>\n</body>\n</html>\n", map_js);
}

int cli_map_html(const cli_scatter *s, const char *dst, char *err, size_t errlen)
{
    cli_page pg;
    cli_thumb *thumbs = NULL;
    map_dir *sorted = NULL;
    uint32_t *dir_of = NULL, nl;
    size_t *counts = NULL, i;
    const char **colour = NULL;
    legend_row *rows = NULL;
    char warn[1024] = "";
    long ndirs;
    int rc;

    memset(&pg, 0, sizeof pg);
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    rc = map_check(s, dst, err, errlen);
    if (rc != PV_OK)
        goto done;
    nl = s->label != NULL ? s->nlabels : 1;
    counts = calloc(nl, sizeof *counts);
    colour = calloc(nl, sizeof *colour);
    rows = calloc(nl, sizeof *rows);
    thumbs = calloc(s->n > 0 ? s->n : 1, sizeof *thumbs);
    ndirs = map_dirs(s, &sorted, &dir_of);
    if (counts == NULL || colour == NULL || rows == NULL || thumbs == NULL || ndirs < 0) {
        rc = PV_ENOMEM;
        cli_page_err(err, errlen, "%s: out of memory for %zu points", dst, s->n);
        goto done;
    }
    for (i = 0; i < s->n; i++) {
        counts[s->label != NULL ? s->label[i] : 0]++;
        thumbs[i].src = s->paths[i];
        thumbs[i].name = (uint32_t)i;
    }
    rc = cli_page_open(&pg, dst, err, errlen);
    if (rc != PV_OK)
        goto done;
    cli_thumbs_make(thumbs, s->n, pg.dir, MAP_THUMB_SIDE, warn, sizeof warn);
    if (cli_label_colours(counts, nl, colour) != PV_OK) {
        rc = PV_ENOMEM;
        cli_page_err(err, errlen, "%s: out of memory for %u labels", dst, nl);
        goto done;
    }
    write_page(pg.f, s, &pg, thumbs, sorted, dir_of, ndirs, counts, colour, nl, rows);
    rc = cli_page_commit(&pg, err, errlen);
    if (rc == PV_OK)
        cli_page_err(err, errlen, "%s", warn);
done:
    cli_page_close(&pg);
    cli_thumbs_free(thumbs, s != NULL ? s->n : 0);
    free(thumbs);
    free(counts);
    free(colour);
    free(rows);
    free(sorted);
    free(dir_of);
    return rc == PV_OK ? 0 : -1;
}
