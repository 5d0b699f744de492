/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The ceiling of libmicrohttpd on this machine: answers GET <path> with bytes
 * held in memory (one prebuilt response per path), in the same threading
 * mode modelfs uses. bench/http.py measures modelfs's API against it.
 *
 * usage: bench_mhd_static PORT THREADS PATH=FILE...   (THREADS 0: a thread per connection)
 * Prints "port=<n>" when listening; runs until SIGTERM/SIGINT.
 */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PATHS 16

static struct {
	const char *path;
	struct MHD_Response *resp;
} routes[MAX_PATHS];
static int nroutes;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *data,
				  size_t *size, void **ctx)
{
	if (!*ctx) {
		*ctx = (void *)1; /* answer on the second call, as modelfs does (keep-alive) */
		return MHD_YES;
	}
	for (int i = 0; i < nroutes; i++)
		if (!strcmp(url, routes[i].path))
			return MHD_queue_response(c, MHD_HTTP_OK, routes[i].resp);
	return MHD_queue_response(c, MHD_HTTP_NOT_FOUND, routes[0].resp);
}

static char *slurp(const char *file, size_t *len)
{
	FILE *f = fopen(file, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = (size_t)n;
	return buf;
}

int main(int argc, char **argv)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	struct MHD_Daemon *d;
	const union MHD_DaemonInfo *info;
	unsigned threads;
	sigset_t set;
	int sig;

	if (argc < 4) {
		fprintf(stderr, "usage: bench_mhd_static PORT THREADS PATH=FILE...\n");
		return 2;
	}
	threads = (unsigned)atoi(argv[2]);
	for (int i = 3; i < argc && nroutes < MAX_PATHS; i++) {
		char *eq = strchr(argv[i], '=');
		size_t len = 0;
		char *body;

		if (!eq || !(body = slurp(eq + 1, &len))) {
			fprintf(stderr, "bench_mhd_static: bad route '%s'\n", argv[i]);
			return 2;
		}
		*eq = '\0';
		routes[nroutes].path = argv[i];
		routes[nroutes].resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
		MHD_add_response_header(routes[nroutes].resp, "Content-Type", "application/json");
		nroutes++;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (threads == 0)
		flags |= MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL;
	else
		flags |= MHD_USE_EPOLL | MHD_USE_TURBO;
	d = MHD_start_daemon(flags, (uint16_t)atoi(argv[1]), NULL, NULL, on_request, NULL,
			     MHD_OPTION_CONNECTION_LIMIT, 1024u, MHD_OPTION_CONNECTION_TIMEOUT, 60u,
			     threads ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads,
			     MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "bench_mhd_static: cannot start\n");
		return 1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("port=%u\n", info ? info->port : 0);
	fflush(stdout);
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	for (int i = 0; i < nroutes; i++)
		MHD_destroy_response(routes[i].resp);
	return 0;
}
