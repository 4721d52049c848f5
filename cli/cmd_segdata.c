/* cmd_segdata.c — `dynopool segdata`: a real segmentation set in the PascalVOC layout,
 * generated from Fashion-MNIST scenes (dp_segset_make_fashion, dynopool/io.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "common.h"

static const char *const SEGDATA_USAGE =
    "Usage: dynopool segdata --out DIR [--from DIR] [--train N] [--val N] [--size S] [--seed K]\n"
    "\n"
    "Writes a semantic segmentation set of real images in the PascalVOC layout, which\n"
    "train --task seg and the VOC reader take as they take VOC itself:\n"
    "  DIR/JPEGImages/<id>.jpg, DIR/SegmentationClass/<id>.png (palette),\n"
    "  DIR/ImageSets/Segmentation/{train,val}.txt, DIR/class_names.txt.\n"
    "Each S x S scene holds 1 to 3 Fashion-MNIST items, scaled, tinted and pasted at\n"
    "random places (training scenes from the training items, validation scenes from\n"
    "the test items); the mask gives each item's pixels its class + 1, the background\n"
    "0 (11 classes), and the items' faint rims 255 (ignored).\n"
    "\n"
    "  --out DIR    the set to write (created, with missing parents; files in it are replaced)\n"
    "  --from DIR   Fashion-MNIST's IDX files        (default /usr/share/datasets/fashion-mnist)\n"
    "  --train N    training scenes                  (default 2000)\n"
    "  --val N      validation scenes                (default 500)\n"
    "  --size S     scene side in pixels              (default 64)\n"
    "  --seed K     the scenes' random draws          (default 1)\n"
    "Example:\n"
    "  dynopool segdata --out data/fashion-scenes\n";

int cmd_segdata(int argc, char **argv)
{
    const char *out = NULL, *from = "/usr/share/datasets/fashion-mnist";
    int n_train = 2000, n_val = 500, size = 64;
    long long seed = 1;
    cli_opt opts[] = {
        {"--out", CLI_TEXT, .dst = &out},
        {"--from", CLI_TEXT, .dst = &from},
        {"--train", CLI_INT, &n_train, .lo = 1, .hi = 10000000},
        {"--val", CLI_INT, &n_val, .lo = 1, .hi = 10000000},
        {"--size", CLI_INT, &size, .lo = 16, .hi = 4096},
        {"--seed", CLI_LONG, &seed, .lo = 0, .hi = 9.2e18},
    };
    cli_cmd c = {"segdata", SEGDATA_USAGE, 0, .opts = opts, .n_opts = sizeof opts / sizeof opts[0]};
    int rc = cli_parse(&c, argc, argv);
    if (rc) return rc == CLI_HELP ? 0 : rc;
    if (!out) return cli_usage("segdata", "%s", "segdata needs --out DIR (the set to write)");
    if (cli_mkdir_p(out)) return cli_fail("segdata: cannot create %s: %s", out, strerror(errno));
    char err[1024] = "";
    if ((rc = dp_segset_make_fashion(from, out, n_train, n_val, size, (unsigned long long)seed, err, sizeof err)))
        return cli_fail("segdata: %s", err[0] ? err : dp_strerror(rc));
    printf("wrote %d training and %d validation scenes of %dx%d to %s\n", n_train, n_val, size, size, out);
    return 0;
}
