/* The API client: `hookline webhooks|deliveries|events ...` talk to a running server over HTTP
 * (cli/client.h) and print what it answers, for people (aligned tables, local times with their
 * age, states in colour on a terminal) or, with --json, exactly the API's JSON for scripts.
 *
 * The client depends on common/ only (and libcurl): it knows the server by its HTTP API, as any
 * other client would.
 */
#ifndef HL_CLI_H
#define HL_CLI_H

/* True when name is one of the client's command groups ("webhooks", "deliveries", "events"). */
int hl_cli_is_group(const char *name);

/* Runs `hookline GROUP SUBCOMMAND ...`: argv[0] is the group. Returns the exit status (0 done,
 * 1 the API refused, 2 usage error, 3 the server cannot be reached). */
int hl_cli_main(int argc, char **argv);

#endif
