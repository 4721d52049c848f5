/* seg_train.h — train and eval for segmentation networks (--task seg; seg_train.c). */
#ifndef DP_CLI_SEG_TRAIN_H
#define DP_CLI_SEG_TRAIN_H

/* 1 when a command's arguments (those after its name) ask for --task seg. */
int seg_task(int argc, char **argv);
/* `train --task seg` and `eval --task seg`: the arguments after the command's name
 * as cmd_train / cmd_eval get them; the exit status. */
int seg_train(int argc, char **argv);
int seg_eval(int argc, char **argv);

#endif
