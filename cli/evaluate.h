/* evaluate.h — data and evaluation shared by train and eval: opening a split,
 * accuracy and loss of a model on it, and decoding the images an evaluation
 * will read. */
#ifndef DP_CLI_EVALUATE_H
#define DP_CLI_EVALUATE_H

#include "common.h"

#define CLI_MAX_WORKERS 16 /* loader threads (--workers of train and eval) */

/* Opens a split of the dataset in dir (kind, classes, input: as dp_dataset_open);
 * 0, or the DP_ERR_* code after saying why (and how to get the default data). */
int cli_open_split(const char *dir, int kind, int train, int classes, int input, dp_dataset **ds);
/* Top-1 accuracy (%) and mean cross-entropy of m on the images idx[0..n) of ds
 * (idx NULL: the first n), from the folder data (named in messages); 0, or the
 * DP_ERR_* code after saying why. */
int cli_evaluate(dp_model *m, const dp_dataset *ds, const char *data, const dp_transform *t,
                 const int *idx, int n, int batch, int workers, double *loss, double *acc);
/* Decodes the images idx[0..n) (idx NULL: the first n) of ds as an evaluation
 * will; 0, or the DP_ERR_* code after saying what the first bad image is.  Only
 * image folders decode on demand: the other formats were read and checked whole
 * when opened. */
int cli_check_images(const dp_dataset *ds, const dp_transform *t, const int *idx, int n, int workers);

#endif
