// The subcommands of the `hybrid` binary; each takes the arguments after its name.
#ifndef HY_COMMANDS_H
#define HY_COMMANDS_H

int cmd_init(int argc, char **argv);
int cmd_score(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_sft(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_runs(int argc, char **argv);

#endif
