/* commands.h — the commands of the tool, one file each (cmd_<name>.c), that
 * main.c dispatches to: each takes the arguments after its name and returns the
 * exit status (0 success, 1 a failure while working, 2 a bad command line). */
#ifndef DP_CLI_COMMANDS_H
#define DP_CLI_COMMANDS_H

int cmd_demo(int argc, char **argv);
int cmd_shape(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_predict(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_segdata(int argc, char **argv);

#endif
