/*
 * cli_run.c - fork, redirect, exec and wait for a child of a test, and read
 * what it printed (see cli_run.h). The output goes to files, not pipes, so a
 * child that prints a lot cannot block on a full pipe while the test waits.
 * cli_fix is the folder-and-output fixture of the suites that run pixvec.
 */
#include "cli_run.h"

#include <criterion/criterion.h>
#include <jansson.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gen.h"

#ifndef PIXVEC_BIN
#error "PIXVEC_BIN must name the built binary"
#endif

char *cli_slurp(const char *path)
{
    uint8_t *d = NULL;
    size_t n = 0;
    char *s;
    if (gen_read_bytes(path, &d, &n) != 0)
        return strdup("");
    s = malloc(n + 1);
    memcpy(s, d, n);
    s[n] = 0;
    free(d);
    return s;
}

pid_t cli_spawn(const char *file, char *const argv[], const char *stdin_file,
                const char *outp, const char *errp)
{
    pid_t pid = fork();
    cr_assert_neq(pid, -1);
    if (pid == 0) {
        int in = open(stdin_file ? stdin_file : "/dev/null", O_RDONLY);
        int out = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(in, 0);
        dup2(out, 1);
        dup2(err, 2);
        execvp(file, argv);
        _exit(127);
    }
    return pid;
}

int cli_wait(pid_t pid, const char *name, const char *outp, const char *errp,
             char **out_text, char **err_text)
{
    int status = 0;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    free(*out_text);
    free(*err_text);
    *out_text = cli_slurp(outp);
    *err_text = cli_slurp(errp);
    cr_assert(WIFEXITED(status), "%s died (signal %d)", name,
              WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    return WEXITSTATUS(status);
}

long cli_checked_items(const char *db, const char *outp, const char *errp)
{
    char *out = NULL, *err = NULL;
    char *chk[] = {"pixvec", "check", (char *)db, NULL};
    char *inf[] = {"pixvec", "info", (char *)db, "--json", NULL};
    int rc = cli_wait(cli_spawn(PIXVEC_BIN, chk, NULL, outp, errp), "check", outp, errp, &out,
                      &err);
    cr_assert_eq(rc, 0, "check: %s%s", out, err);
    rc = cli_wait(cli_spawn(PIXVEC_BIN, inf, NULL, outp, errp), "info", outp, errp, &out, &err);
    cr_assert_eq(rc, 0, "info: %s", err);
    json_t *j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "%s", out);
    long n = (long)json_integer_value(json_object_get(j, "items"));
    json_decref(j);
    free(out);
    free(err);
    return n;
}

void cli_fix_setup(cli_fix *f)
{
    memset(f, 0, sizeof *f);
    cr_assert_eq(gen_tmpdir(f->dir), 0);
    gen_path(f->imgs, f->dir, "imgs");
    gen_path(f->db, f->dir, "t.pvdb");
    gen_path(f->outp, f->dir, "stdout");
    gen_path(f->errp, f->dir, "stderr");
    gen_path(f->inp, f->dir, "stdin");
    cr_assert_eq(mkdir(f->imgs, 0755), 0);
}

void cli_fix_teardown(cli_fix *f)
{
    free(f->out);
    free(f->err);
    f->out = f->err = NULL;
    if (f->dir[0])
        gen_rmtree(f->dir);
}

int cli_fix_runv(cli_fix *f, const char *stdin_text, char *const argv[])
{
    /* the command line, shortened, names the run if it dies of a signal */
    char name[256] = "";
    size_t len = 0;
    for (int i = 1; argv[i] && len + 1 < sizeof name; i++)
        len += (size_t)snprintf(name + len, sizeof name - len, "%s%s", i > 1 ? " " : "",
                                argv[i]);
    if (stdin_text)
        cr_assert_eq(gen_write_bytes(f->inp, stdin_text, strlen(stdin_text)), 0);
    return cli_wait(cli_spawn(PIXVEC_BIN, argv, stdin_text ? f->inp : NULL, f->outp, f->errp),
                    name, f->outp, f->errp, &f->out, &f->err);
}

int cli_fix_run(cli_fix *f, const char *stdin_text, const char *first, ...)
{
    char *argv[64];
    int argc = 0;
    va_list ap;
    argv[argc++] = "pixvec";
    argv[argc++] = (char *)first;
    va_start(ap, first);
    while (argc < 63 && (argv[argc] = va_arg(ap, char *)) != NULL)
        argc++;
    va_end(ap);
    argv[argc] = NULL;
    return cli_fix_runv(f, stdin_text, argv);
}

json_t *cli_fix_json(const cli_fix *f)
{
    json_error_t e;
    json_t *j = json_loads(f->out, 0, &e);
    cr_assert_not_null(j, "stdout is not one JSON document (%s): %s", e.text, f->out);
    return j;
}

/* The command from fmt and ap, malloc'd; fails the test if too long. */
static char *cli_shell_cmd(const char *fmt, va_list ap)
{
    char *cmd = malloc(CLI_SHELL_MAX);
    cr_assert_not_null(cmd);
    int n = vsnprintf(cmd, CLI_SHELL_MAX, fmt, ap);
    cr_assert(n > 0 && n < CLI_SHELL_MAX, "command too long");
    return cmd;
}

void cli_shell(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = cli_shell_cmd(fmt, ap);
    va_end(ap);
    cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
    free(cmd);
}

void cli_shell_line(char *out, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = cli_shell_cmd(fmt, ap);
    va_end(ap);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    cr_assert_not_null(fgets(out, (int)len, f), "no output from %s", cmd);
    cr_assert_eq(pclose(f), 0, "failed: %s", cmd);
    free(cmd);
}
