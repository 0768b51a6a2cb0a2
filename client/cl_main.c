/* shoal-client — streams a video to a shoal server and collects its answers (client/cl.h).
 * Exit status: 0 done, 1 run-time failure, 2 bad command line. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "client/cl.h"

static volatile sig_atomic_t cl_main_stop; /* the stop flag: the one allowed global */

static void cl_main_on_signal(int sig)
{
	(void)sig;
	cl_main_stop = 1;
}

int main(int argc, char **argv)
{
	struct cl_opts o;
	char err[256];
	int rc = cl_opts_parse(&o, argc, argv, err, sizeof(err));
	if (rc == 1) {
		cl_usage(stdout);
		return 0;
	}
	if (rc) {
		fprintf(stderr, "shoal-client: %s\n", err);
		return 2;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = cl_main_on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	struct cl_client *c = cl_client_create(&o);
	if (!c)
		return 1;
	rc = cl_client_run(c, &cl_main_stop);
	struct cl_stats st;
	cl_client_stats(c, &st);
	char line[1024];
	cl_stats_format(&st, line, sizeof(line));
	printf("%s\n", line);
	cl_client_destroy(c);
	return rc ? 1 : 0;
}
