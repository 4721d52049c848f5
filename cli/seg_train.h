/* seg_train.h — train and eval for segmentation networks (--task seg; seg_train.c). */
#ifndef DP_CLI_SEG_TRAIN_H
#define DP_CLI_SEG_TRAIN_H

#include <stddef.h>

/* 1 when a command's arguments (those after its name) ask for --task seg. */
int seg_task(int argc, char **argv);
/* `train --task seg` and `eval --task seg`: the arguments after the command's name
 * as cmd_train / cmd_eval get them; the exit status. */
int seg_train(int argc, char **argv);
int seg_eval(int argc, char **argv);

/* `dynopool plot`'s picture of a segmentation run: the first n images of the val split
 * of the set in folder data, one row each, as the checkpoint ckpt's evaluation sees them,
 * in three panels: the input | the ground truth | the prediction, the masks in PascalVOC's
 * colours (dp_seg_palette; 255, ignored, light grey), every panel the network's side
 * scaled by the smallest whole factor z that makes it at least 96 pixels, SEG_MASKS_GAP
 * white pixels around and between the panels; an RGB PNG at path.  The ids drawn,
 * space-separated, into ids[cap].  0, or 1 after saying why. */
#define SEG_MASKS_GAP 4
int seg_masks_png(const char *ckpt, const char *data, int n, const char *path, char *ids, size_t cap);

#endif
