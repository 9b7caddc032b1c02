/* image_walk.h - the image files under directories, found the same way by every command that
 * takes directories (index, compare): recursive, entries starting with '.' skipped, symbolic
 * links to files followed and to directories not, image extensions in any case, and DICOM files
 * without an extension recognised by their Part 10 marker. */
#ifndef BMC_CLI_IMAGE_WALK_H
#define BMC_CLI_IMAGE_WALK_H

/* A growable list of malloc'd strings. */
typedef struct cli_paths {
    char **v;
    int n, cap;
} cli_paths;

/* Append s (taking it: freed on failure); -1 when s is NULL or memory runs out. */
int cli_paths_push(cli_paths *l, char *s);
void cli_paths_free(cli_paths *l);
/* strcmp order, for qsort of a cli_paths' v. */
int cli_paths_cmp(const void *a, const void *b);

/* Append the image files under dir to out in directory order (sort them after). A directory that
 * cannot be opened is named on stderr ("biomedclip CMD: DIR: cannot open directory") and counted
 * in *errors; a file whose name holds a newline is skipped with a warning (paths are stored one a
 * line). Returns 0, or -1 when memory runs out. */
int cli_walk_images(const char *cmd, const char *dir, cli_paths *out, int *errors);

#endif /* BMC_CLI_IMAGE_WALK_H */
