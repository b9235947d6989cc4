/*
 * man.c - the manual page pixvec(1), written from the command table: every
 * command's usage and help, as `pixvec help CMD` prints them, so the page
 * can never miss a command or an option. The build writes it with
 * `pixvec help --man` (CMakeLists.txt) and `cmake --install` puts it in
 * share/man/man1.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* Text as roff takes it literally: a backslash doubled as \e, a line that
 * starts with '.' or '\'' guarded with \&, '-' as \- (a minus, as options
 * want). */
static void roff_text(FILE *f, const char *s)
{
    int bol = 1;
    for (; *s; s++) {
        if (bol && (*s == '.' || *s == '\''))
            fputs("\\&", f);
        if (*s == '\\')
            fputs("\\e", f);
        else if (*s == '-')
            fputs("\\-", f);
        else
            fputc(*s, f);
        bol = *s == '\n';
    }
}

void cli_print_man(FILE *f)
{
    fprintf(f, ".TH PIXVEC 1 \"\" \"pixvec %s\" \"User Commands\"\n", PV_VERSION_STRING);
    fputs(".SH NAME\npixvec \\- an embedded vector database for images\n"
          ".SH SYNOPSIS\n.B pixvec\n.I COMMAND DB\n[\\fIARGS\\fR]\n.br\n.B pixvec shell\n"
          ".I DB\n.SH DESCRIPTION\npixvec ingests folders of images (JPEG, PNG, WebP, "
          "HEIC/HEIF/AVIF, TIFF, GIF, BMP), turns each into a normalized embedding, and keeps "
          "the vectors, their records and an HNSW graph in one LMDB environment (the folder "
          "\\fIDB\\fR). It answers queries for similar images, groups of duplicates and "
          "near-duplicates, clusters, maps of a collection and a dataset-quality report. Every "
          "command below also runs inside \\fBpixvec shell\\fR \\fIDB\\fR, without the DB "
          "argument.\n.PP\nWith \\fB\\-\\-json\\fR every outcome, errors too, is one JSON "
          "document on standard output.\n.SH COMMANDS\n",
          f);
    for (const cli_cmd *c = cli_commands; c->name; c++) {
        fprintf(f, ".SS \"");
        roff_text(f, c->name);
        fprintf(f, "\"\n.B pixvec ");
        roff_text(f, c->name);
        fputc(' ', f);
        roff_text(f, c->usage);
        fputs("\n.PP\n.nf\n", f);
        roff_text(f, c->help);
        fputs("\n.fi\n", f);
    }
    fputs(".SH EXIT STATUS\n0 success, 1 error, 2 usage error; \\fBdups \\-\\-exit\\-code\\fR: "
          "3 when duplicates were found; 128 + N when stopped by signal N.\n"
          ".SH FILES\n.TP\n\\fIDB\\fR/data.mdb, \\fIDB\\fR/lock.mdb\nthe database (LMDB).\n"
          ".TP\n~/.pixvec_history\nthe shell's history.\n"
          ".SH SEE ALSO\nThe README of the pixvec sources; the C API in "
          "\\fIpixvec.h\\fR (pkg-config \\fBpixvec\\fR).\n",
          f);
}
