/* fuzz_cli.c - libFuzzer target: the `biomedclip` command line, argument parsing first.
 *
 * The input is an argument vector: NUL-separated strings (at most 32). The CLI's own main()
 * is linked renamed (tools/cli/main.c compiled with -Dmain=cli_main_for_fuzz, fuzz/fuzz.mk),
 * so the dispatch and every subcommand run unchanged. Placeholders let the fuzzer reach real
 * work without guessing paths: @img (a PNG), @jpg (a JPEG), @dir (a folder of both), @idx (an
 * index made at start-up by `biomedclip index`), @txt (a labels / texts file), @model (the
 * tiny model; BIOMEDCLIP_MODEL is set to it as well).
 *
 * Safety of the harness itself: the CLI runs in an empty scratch folder, emptied after every
 * input, and an argument holding '/' (other than the placeholders) skips the input, so nothing
 * outside the scratch folder can be written. Standard input is /dev/null (a '-' file reads
 * nothing, never blocks), standard output goes to /dev/null; run with -close_fd_mask=2 to
 * silence the CLI's messages. */

#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_common.h"

int cli_main_for_fuzz(int argc, char **argv);

#define MAX_ARGS 32
static char g_root[256], g_work[300], g_img[300], g_jpg[300], g_dir[300], g_idx[300], g_txt[300];
static char g_model[4096];

/* a 4x3 RGB PNG, so that the harness needs no image files */
static const unsigned char png4x3[] = { /* PIL: Image.new("RGB", (4, 3)), pixels (60x, 100y, 200) */
    0x89,0x50,0x4e,0x47,0x0d,0x0a,0x1a,0x0a,0x00,0x00,0x00,0x0d,0x49,0x48,0x44,0x52,0x00,0x00,0x00,0x04,
    0x00,0x00,0x00,0x03,0x08,0x02,0x00,0x00,0x00,0x3b,0x96,0x39,0x91,0x00,0x00,0x00,0x18,0x49,0x44,0x41,
    0x54,0x78,0x9c,0x63,0x64,0x60,0x38,0x61,0xc3,0xc0,0x00,0x41,0x2c,0x0c,0x29,0x0c,0x70,0x80,0xc2,0x01,
    0x00,0x41,0x36,0x02,0x4e,0x35,0x47,0xc8,0xc5,0x00,0x00,0x00,0x00,0x49,0x45,0x4e,0x44,0xae,0x42,0x60,
    0x82};

static void write_file(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    if (ftw->level > 0) remove(path);
    return 0;
}
static void empty_dir(const char *dir) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* the scratch tree goes when the process exits (libFuzzer's -fork mode starts many) */
static void remove_root(void) {
    if (!g_root[0]) return;
    empty_dir(g_root);
    rmdir(g_root);
}

static int g_home = -1; /* the fuzzer's own working directory (its corpus paths may be relative) */

static int run_cli(int argc, char **argv) {
    if (chdir(g_work) != 0) abort();
    int rc = cli_main_for_fuzz(argc, argv);
    fflush(stdout);
    empty_dir(g_work);
    if (fchdir(g_home) != 0) abort();
    return rc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    bmc_model *m = fuzz_load_tiny(); /* checks it loads; the CLI loads its own */
    bmc_model_free(m);
    const char *p = getenv("BMC_FUZZ_MODEL");
    const char *td = getenv("BMC_TESTDATA");
    char cwd[2048];
    if (!getcwd(cwd, sizeof cwd)) abort();
    g_home = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (g_home < 0) abort();
    if (p && *p) snprintf(g_model, sizeof g_model, "%s%s%s", p[0] == '/' ? "" : cwd, p[0] == '/' ? "" : "/", p);
    else snprintf(g_model, sizeof g_model, "%s/%s/tiny.bmc", cwd, td && *td ? td : "build/testdata");
    if (td && *td && td[0] == '/') snprintf(g_model, sizeof g_model, "%s/tiny.bmc", td);
    if (p && *p && p[0] == '/') snprintf(g_model, sizeof g_model, "%s", p);
    setenv("BIOMEDCLIP_MODEL", g_model, 1);

    snprintf(g_root, sizeof g_root, "/tmp/fuzz_cli.XXXXXX");
    if (!mkdtemp(g_root)) abort();
    atexit(remove_root);
    snprintf(g_work, sizeof g_work, "%s/work", g_root);
    snprintf(g_dir, sizeof g_dir, "%s/images", g_root);
    snprintf(g_img, sizeof g_img, "%s/images/a.png", g_root);
    snprintf(g_jpg, sizeof g_jpg, "%s/b.jpg", g_root);
    snprintf(g_idx, sizeof g_idx, "%s/index", g_root);
    snprintf(g_txt, sizeof g_txt, "%s/labels.txt", g_root);
    if (mkdir(g_work, 0700) || mkdir(g_dir, 0700)) abort();
    write_file(g_img, png4x3, sizeof png4x3);
    /* the JPEG: the PNG's bytes are no JPEG, so use the one in the corpus when present */
    FILE *j = fopen("fuzz/corpus/image/base.jpg", "rb");
    if (j) {
        unsigned char buf[8192];
        size_t n = fread(buf, 1, sizeof buf, j);
        fclose(j);
        if (n > 1) write_file(g_jpg, buf + 1, n - 1); /* skip fuzz_image's selector byte */
    }
    if (access(g_jpg, R_OK) != 0) write_file(g_jpg, png4x3, sizeof png4x3);
    const char labels[] = "chest X-ray\nbrain MRI\n\nhistopathology\n";
    write_file(g_txt, labels, sizeof labels - 1);

    if (!freopen("/dev/null", "r", stdin) || !freopen("/dev/null", "w", stdout)) abort();
    char *idx_argv[] = {"biomedclip", "index", "-o", g_idx, "--quiet", g_dir, NULL};
    int rc = run_cli(6, idx_argv);
    if (rc != 0) fprintf(stderr, "fuzz_cli: warning: making the index failed (%d); @idx is missing\n", rc);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = malloc(size + 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    copy[size] = 0;
    char *argv[MAX_ARGS + 2];
    int argc = 0;
    argv[argc++] = "biomedclip";
    for (size_t i = 0; i <= size && argc <= MAX_ARGS;) {
        char *a = copy + i;
        size_t len = strlen(a);
        if (!strcmp(a, "@img")) argv[argc++] = g_img;
        else if (!strcmp(a, "@jpg")) argv[argc++] = g_jpg;
        else if (!strcmp(a, "@dir")) argv[argc++] = g_dir;
        else if (!strcmp(a, "@idx")) argv[argc++] = g_idx;
        else if (!strcmp(a, "@txt")) argv[argc++] = g_txt;
        else if (!strcmp(a, "@model")) argv[argc++] = g_model;
        else if (strchr(a, '/')) goto out; /* never write outside the scratch folder */
        else argv[argc++] = a;
        i += len + 1;
    }
    argv[argc] = NULL;
    int rc = run_cli(argc, argv);
    if (rc < 0 || rc > 3) abort(); /* docs/CLI.md: exit codes 0..3 */
out:
    free(copy);
    return 0;
}
