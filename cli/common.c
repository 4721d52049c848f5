/* common.c — errors, option parsing, time, signals, files, JSON, random numbers
 * and names shared by every command (common.h). */
#include "common.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>

const char *cli_prog = "dynopool";
int cli_threads_auto;
int cli_precision = DP_PRECISION_FP32;

/* ---- errors ------------------------------------------------------------------ */

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("dynopool: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("dynopool: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry '%s%s%s --help'.\n", cli_prog, cmd ? " " : "", cmd ? cmd : "");
    return EXIT_USAGE;
}

/* ---- options ----------------------------------------------------------------- */

/* Whole-string numbers; 0 on success. */
static int parse_long(const char *s, long long *v)
{
    char *end;
    errno = 0;
    const long long a = strtoll(s, &end, 10);
    if (end == s || *end || errno) return -1;
    *v = a;
    return 0;
}

static int parse_double(const char *s, double *v)
{
    char *end;
    errno = 0;
    const double a = strtod(s, &end);
    if (end == s || *end || errno || !isfinite(a)) return -1;
    *v = a;
    return 0;
}

/* What a value of o should be, for its message. */
static void describe(const cli_opt *o, char *b, size_t cap)
{
    if (o->want) snprintf(b, cap, "%s", o->want);
    else if (o->kind == CLI_NUM)
        snprintf(b, cap, "a number in %c%g, %g%c", o->flags & CLI_OPEN_LO ? '(' : '[', o->lo, o->hi,
                 o->flags & CLI_OPEN_HI ? ')' : ']');
    else snprintf(b, cap, "an integer in [%.0f, %.0f]", o->lo, o->hi);
}

/* 0 when v is a value of o (stored in o->dst), else -1. */
static int store(const cli_opt *o, const char *v)
{
    long long n;
    double d;
    int e;
    switch (o->kind) {
    case CLI_INT:
    case CLI_LONG:
        if (parse_long(v, &n)) return -1;
        if (!(n >= (long long)o->lo && n <= (long long)o->hi) && !(n == 0 && (o->flags & CLI_OR_ZERO)))
            return -1;
        if (o->kind == CLI_INT) *(int *)o->dst = (int)n;
        else *(long long *)o->dst = n;
        return 0;
    case CLI_NUM:
        if (parse_double(v, &d) || d < o->lo || d > o->hi || ((o->flags & CLI_OPEN_LO) && d == o->lo) ||
            ((o->flags & CLI_OPEN_HI) && d == o->hi))
            return -1;
        *(double *)o->dst = d;
        return 0;
    case CLI_TEXT: *(const char **)o->dst = v; return 0;
    case CLI_NAME:
        if ((e = o->to_enum(v)) < 0) return -1;
        *(int *)o->dst = e;
        return 0;
    case CLI_PARSE: return o->parse(v, o->dst) ? -1 : 0;
    }
    return -1;
}

int cli_take(const char *cmd, cli_opt *o, const char *v)
{
    if (store(o, v)) {
        char want[160];
        describe(o, want, sizeof want);
        return cli_usage(cmd, "%s: expected %s, got '%s'", o->name, want, v);
    }
    o->set = 1;
    return 0;
}

int cli_parse(cli_cmd *c, int argc, char **argv)
{
    c->n_args = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            if (c->usage_prog) printf(c->usage, cli_prog, cli_prog);
            else fputs(c->usage, stdout);
            return CLI_HELP;
        }
        if (a[0] != '-' || !a[1]) { /* "-" names a file */
            if (!c->args) return cli_usage(c->name, "unexpected argument '%s'", a);
            c->args[c->n_args++] = a;
            continue;
        }
        cli_opt *o = c->opts;
        while (o < c->opts + c->n_opts && strcmp(a, o->name)) o++;
        if (o == c->opts + c->n_opts) return cli_usage(c->name, "unknown option '%s'", a);
        if (o->kind == CLI_FLAG) {
            *(int *)o->dst = 1, o->set = 1;
            continue;
        }
        if (i + 1 >= argc) return cli_usage(c->name, "option '%s' needs a value", a);
        const int rc = cli_take(c->name, o, argv[++i]);
        if (rc) return rc;
    }
    return 0;
}

/* ---- time and signals ------------------------------------------------------------- */

double cli_now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void cli_fmt_eta(char *b, size_t cap, double s)
{
    if (!(s >= 0) || s > 1e7) snprintf(b, cap, "--");
    else if (s >= 3600) snprintf(b, cap, "%d:%02d:%02d", (int)s / 3600, (int)s / 60 % 60, (int)s % 60);
    else snprintf(b, cap, "%d:%02d", (int)s / 60, (int)s % 60);
}

void cli_progress_print(const char *line, int tty, int *live)
{
    if (tty) { /* cut to the terminal's width so that \r can redraw it */
        struct winsize ws;
        const int cols = ioctl(fileno(stdout), TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20 ? ws.ws_col : 200;
        printf("\r\033[K%.*s", cols - 1, line);
        *live = 1;
    } else {
        puts(line);
    }
    fflush(stdout);
}

volatile sig_atomic_t cli_signal;

static void on_signal(int sig) { cli_signal = sig; }

void cli_catch_signal(int sig, struct sigaction *old)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND; /* a second Ctrl-C kills at once */
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, old);
}

/* ---- files ----------------------------------------------------------------------- */

char *cli_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    const long n = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
    char *b = n >= 0 && !fseek(f, 0, SEEK_SET) ? malloc((size_t)n + 1) : NULL;
    if (b && fread(b, 1, (size_t)n, f) == (size_t)n) b[n] = '\0';
    else free(b), b = NULL, errno = EIO;
    fclose(f);
    return b;
}

int cli_mkdir_p(const char *path)
{
    char p[4096];
    struct stat st;
    if (snprintf(p, sizeof p, "%s", path) >= (int)sizeof p) {
        errno = ENAMETOOLONG;
        return -1;
    }
    for (char *c = p + 1;; c++)
        if (*c == '/' || !*c) {
            const char keep = *c;
            *c = '\0';
            if (mkdir(p, 0777) && errno != EEXIST) return -1;
            if (!(*c = keep)) break;
        }
    if (stat(p, &st)) return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int cli_write_text(const char *path, const char *text)
{
    const size_t n = strlen(text);
    char *s = malloc(n + 2);
    if (!s) return -1;
    memcpy(s, text, n);
    s[n] = '\n', s[n + 1] = 0;
    const int rc = dp_write_file_atomic(path, s, n + 1);
    const int e = errno;
    free(s);
    errno = e;
    return rc ? -1 : 0;
}

/* ---- JSON -------------------------------------------------------------------------- */

int cli_json_num(const cJSON *o, const char *k, double *v)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsNumber(it)) return -1;
    *v = it->valuedouble;
    return 0;
}

int cli_json_str(const cJSON *o, const char *k, char *v, size_t cap)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    if (!cJSON_IsString(it) || strlen(it->valuestring) >= cap) return -1;
    strcpy(v, it->valuestring);
    return 0;
}

int cli_json_range(const cJSON *o, const char *k, double lo, double hi, int flags, double *v, char *msg,
                   size_t cap)
{
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, k);
    const double d = cJSON_IsNumber(it) ? it->valuedouble : NAN;
    const int whole = flags & CLI_WHOLE, open = flags & CLI_OPEN_LO;
    if (d >= lo && d <= hi && !(open && d == lo) && !(whole && d != floor(d))) {
        *v = d;
        return 0;
    }
    char got[48];
    if (cJSON_IsNumber(it)) snprintf(got, sizeof got, "= %.17g", d);
    else snprintf(got, sizeof got, "%s", it ? "is not a number" : "is missing");
    snprintf(msg, cap, "field '%s' %s, expected %s in %c%.16g, %.16g]", k, got, whole ? "an integer" : "a number",
             open ? '(' : '[', lo, hi);
    return -1;
}

cJSON *cli_json_fixed(double v, const char *fmt)
{
    char b[64];
    snprintf(b, sizeof b, fmt, v);
    return isfinite(v) ? cJSON_CreateRaw(b) : cJSON_CreateNull();
}

void cli_json_add_fixed(cJSON *o, const char *k, double v, const char *fmt)
{
    cJSON_AddItemToObject(o, k, cli_json_fixed(v, fmt));
}

char *cli_json_line(const cJSON *o)
{
    char *s = cJSON_PrintUnformatted(o);
    size_t extra = 0, n = 0;
    for (const char *c = s; c && *c; c++) extra += *c == ',' || *c == ':'; /* at most one space each */
    char *line = s ? malloc(strlen(s) + extra + 1) : NULL;
    int in_string = 0, escaped = 0;
    for (const char *c = s; line && *c; c++) { /* cJSON's unformatted text: no space outside strings */
        line[n++] = *c;
        if (in_string) {
            in_string = escaped || *c != '"';
            escaped = !escaped && *c == '\\';
        } else if (*c == '"') {
            in_string = 1;
        } else if (*c == ',' || *c == ':') {
            line[n++] = ' ';
        }
    }
    if (line) line[n] = 0;
    free(s);
    return line;
}

/* ---- random numbers ---------------------------------------------------------------- */

uint64_t cli_splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t cli_mix64(uint64_t z) { return cli_splitmix64(&z); }

void cli_shuffle(int *order, int n, uint64_t seed)
{
    for (int i = 0; i < n; i++) order[i] = i;
    uint64_t s = seed;
    for (int i = n - 1; i > 0; i--) {
        s = cli_mix64(s);
        const int j = (int)((s >> 11) % (uint64_t)(i + 1));
        const int k = order[i];
        order[i] = order[j], order[j] = k;
    }
}

void cli_epoch_order(int *order, int n, uint64_t seed, int epoch)
{
    cli_shuffle(order, n, cli_mix64(seed * 1000003ULL + (uint64_t)epoch));
}

float cli_randn(uint64_t *s)
{
    const uint64_t z0 = cli_splitmix64(s) >> 11, z1 = cli_splitmix64(s) >> 11;
    const double u1 = ((double)z0 + 1.0) * 0x1.0p-53, u2 = (double)z1 * 0x1.0p-53;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* ---- names ------------------------------------------------------------------------- */

void cli_base_name(const char *path, char *out, size_t n)
{
    const char *s = path + strlen(path);
    while (s > path && s[-1] == '/') s--;
    const char *b = s;
    while (b > path && b[-1] != '/') b--;
    snprintf(out, n, "%.*s", (int)(s - b), b);
}

const char *cli_data_name(const char *dir)
{
    if (!strcmp(dir, CLI_FASHION_MNIST) || !strcmp(dir, CLI_FASHION_MNIST "/")) return "fashion-mnist";
    static _Thread_local char name[256];
    cli_base_name(dir, name, sizeof name);
    return name[0] ? name : "data";
}

const char *cli_class_name(const char *name, int kind, int classes, int k)
{
    /* the datasets' own label order: Fashion-MNIST's README, CIFAR-10's batches.meta.txt */
    static const char *const fmnist[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
    static const char *const cifar10[10] = {"airplane", "automobile", "bird", "cat", "deer",
                                            "dog", "frog", "horse", "ship", "truck"};
    if (classes != 10 || k < 0 || k >= 10) return NULL;
    if (name && !strcmp(name, "fashion-mnist") && (kind == DP_DATA_IDX || kind == DP_DATA_AUTO)) return fmnist[k];
    if (kind == DP_DATA_CIFAR10) return cifar10[k];
    return NULL;
}

void cli_print_sizes(FILE *f, const dp_model_info *in, int input)
{
    fprintf(f, "%dx%d", input, input);
    for (int s = 0; s < in->n_stages; s++) fprintf(f, " -> %dx%d", in->sizes[s][0], in->sizes[s][1]);
}

void cli_sizes_str(char *b, size_t cap, const dp_model_info *in)
{
    size_t o = 0;
    b[0] = 0;
    for (int s = 0; s < in->n_stages && o + 16 < cap; s++)
        o += (size_t)snprintf(b + o, cap - o, "%s%dx%d", s ? " " : "", in->sizes[s][0], in->sizes[s][1]);
}

double cli_decimal(float f)
{
    char b[32];
    for (int digits = 1; digits < 9; digits++) {
        snprintf(b, sizeof b, "%.*g", digits, (double)f);
        if (strtof(b, NULL) == f) return strtod(b, NULL);
    }
    return (double)f; /* nine digits always read back */
}
