/* The receiving side's commands: `hookline listen` and `hookline verify`. */
#ifndef HL_LISTEN_H
#define HL_LISTEN_H

/* `hookline listen`: a verifying, de-duplicating receiver. Returns the exit status. */
int hl_listen_main(int argc, char **argv);
/* `hookline listen replay`: queues events whose hand-off gave up again. Returns the exit status
 * (0 all queued, 1 one unknown or handed on already, 2 usage). */
int hl_listen_replay_main(int argc, char **argv);
/* `hookline verify`: checks one body's signature from a shell. Returns 0 valid, 1 invalid,
 * 2 usage. */
int hl_verify_main(int argc, char **argv);

#endif
