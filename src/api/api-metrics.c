/* api-metrics.c: the node's and the master's part of GET /metrics (api-routes.c has the cell view).
 * The node's: read on this host from the node agent's directory (<root>/node: running/, cleanup/,
 * exits/, node.json for the cgroup root) and the containers' cgroups (cg_stats()).  The master's: what
 * the store says (election members, placements); docs/API.md "Metrics". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../basic/util.h"
#include "../cellns/cellns.h"
#include "../cgroup/cg.h"
#include "../node/agent-metrics.h"
#include "../node/layout.h"
#include "../store/store.h"
#include "api-internal.h"

/* A label value as the text format wants it: \\, \" and \n escaped (into buf, truncated). */
static const char *label(const char *s, char *buf, size_t size)
{
	size_t k = 0;

	for (; s && *s && k + 3 < size; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n')
			buf[k++] = '\\';
		buf[k++] = *s == '\n' ? 'n' : *s;
	}
	buf[k] = 0;
	return buf;
}

/* The names in dir (not starting with '.'), sorted; an empty list if dir is missing. */
static char **dir_names(const char *dir)
{
	_cleanup_strv_free_ char **v = NULL;
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return calloc(1, sizeof(char *));
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && strv_extend(&v, de->d_name) < 0) {
			closedir(d);
			return NULL;
		}
	closedir(d);
	if (!v)
		return calloc(1, sizeof(char *));
	strv_sort(v);
	return TAKE_PTR(v);
}

/* Exits of an instance's services recorded by the node (exits/<instance>/<service>, one line each);
 * exitsfd: the node's exits/ directory. */
static size_t instance_exits(int exitsfd, const char *instance)
{
	int fd = exitsfd >= 0 ? openat(exitsfd, instance, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	size_t n = 0;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	while ((de = readdir(d))) {
		_cleanup_free_ char *text = NULL;

		if (de->d_name[0] == '.' || read_file_at(dirfd(d), de->d_name, &text, NULL) < 0)
			continue;
		for (char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
			n += *l != '\n';
	}
	closedir(d);
	return n;
}

struct inst_stats {
	char *instance;
	char label[512];	/* instance as a label value (label()) */
	struct cg_stats st;
	size_t exits;
};

#define METRIC(f, name, type, help) fprintf(f, "# HELP " name " " help "\n# TYPE " name " " type "\n")

/* The node's capacity, as its agent registered it in /servers/<host> (what the scheduler places against). */
static void node_capacity(struct store *s, const char *host, FILE *f)
{
	struct cellns_server srv = { .up_since = NAN };
	const char *mem, *cpu, *disk;
	uint64_t mem_b = 0, disk_b = 0;
	double cpu_pct = 0;

	if (!s || !host || cellns_server_get(s, host, &srv) < 0)
		return;
	mem = json_string_value(json_object_get(srv.json, "memory"));
	cpu = json_string_value(json_object_get(srv.json, "cpu"));
	disk = json_string_value(json_object_get(srv.json, "disk"));
	METRIC(f, "treadle_node_capacity_memory_bytes", "gauge", "Memory this node offers to the scheduler.");
	if (mem && parse_size(mem, &mem_b) >= 0)
		fprintf(f, "treadle_node_capacity_memory_bytes %llu\n", (unsigned long long)mem_b);
	METRIC(f, "treadle_node_capacity_cpus", "gauge", "CPU this node offers to the scheduler, in cores.");
	if (cpu && parse_cpu(cpu, CPU_FRACTION, &cpu_pct) >= 0)
		fprintf(f, "treadle_node_capacity_cpus %g\n", cpu_pct / 100);
	METRIC(f, "treadle_node_capacity_disk_bytes", "gauge", "Disk this node offers to the scheduler.");
	if (disk && parse_size(disk, &disk_b) >= 0)
		fprintf(f, "treadle_node_capacity_disk_bytes %llu\n", (unsigned long long)disk_b);
	cellns_server_clear(&srv);
}

void api_metrics_node(struct store *store, const char *root, FILE *f)
{
	_cleanup_free_ char *noderoot = strdup_printf("%s/node", root), *cfg_path = NULL, *running = NULL,
			    *cleanup = NULL;
	_cleanup_free_ char *exits = NULL;
	_cleanup_strv_free_ char **insts = NULL, **cleaning = NULL;
	_cleanup_json_ json_t *cfg = NULL;
	_cleanup_close_ int exitsfd = -1, runfd = -1;
	struct cg *cg = NULL;
	struct inst_stats *v = NULL;
	size_t n = 0;

	if (!noderoot)
		return;
	cfg_path = strdup_printf("%s/" NODE_SETTINGS_FILE, noderoot);
	cfg = cfg_path ? json_load_file(cfg_path, 0, NULL) : NULL;
	if (!cfg) /* no node agent on this host */
		return;
	running = strdup_printf("%s/" NODE_DIR_RUNNING, noderoot);
	cleanup = strdup_printf("%s/" NODE_DIR_CLEANUP, noderoot);
	exits = strdup_printf("%s/" NODE_DIR_EXITS, noderoot);
	insts = running ? dir_names(running) : NULL;
	cleaning = cleanup ? dir_names(cleanup) : NULL;
	if (cg_open(NULL, json_string_value(json_object_get(cfg, "cgroup_root")), 0, &cg, NULL) < 0)
		cg = NULL;
	exitsfd = open(exits ? exits : "", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	runfd = open(running ? running : "", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	v = calloc(strv_length(insts) + 1, sizeof(*v));
	for (size_t i = 0; v && insts && insts[i]; i++) {
		_cleanup_free_ char *path = NULL;
		char target[PATH_MAX];
		const char *unique;
		ssize_t l = runfd >= 0 ? readlinkat(runfd, insts[i], target, sizeof(target) - 1) : -1;

		if (l < 0)
			continue;
		target[l] = 0;
		unique = strrchr(target, '/') ? strrchr(target, '/') + 1 : target;
		path = strdup_printf("apps/%s/services", unique);
		v[n].instance = insts[i];
		label(insts[i], v[n].label, sizeof(v[n].label));
		v[n].exits = instance_exits(exitsfd, insts[i]);
		if (!cg || !path || cg_stats(cg, path, &v[n].st) < 0)
			v[n].st = (struct cg_stats){ .memory_limit = UINT64_MAX };
		n++;
	}
	if (cg)
		cg_close(cg);

	METRIC(f, "treadle_node_containers", "gauge", "Containers of this node, by state (running, or stopping: being cleaned up).");
	fprintf(f, "treadle_node_containers{state=\"running\"} %zu\n", strv_length(insts));
	fprintf(f, "treadle_node_containers{state=\"stopping\"} %zu\n", strv_length(cleaning));
#define PER_INSTANCE(name, type, help, fmt, expr)                                                   \
	do {                                                                                        \
		METRIC(f, name, type, help);                                                        \
		for (size_t i = 0; i < n; i++) {                                                    \
			const struct inst_stats *s = &v[i];                                         \
			fprintf(f, name "{instance=\"%s\"} " fmt "\n", s->label, expr); \
		}                                                                                   \
	} while (0)
	PER_INSTANCE("treadle_instance_memory_bytes", "gauge", "Memory used by the instance's processes (cgroup).",
		     "%llu", (unsigned long long)s->st.memory_bytes);
	METRIC(f, "treadle_instance_memory_limit_bytes", "gauge", "The instance's memory limit (cgroup); absent when unlimited.");
	for (size_t i = 0; i < n; i++)
		if (v[i].st.memory_limit != UINT64_MAX)
			fprintf(f, "treadle_instance_memory_limit_bytes{instance=\"%s\"} %llu\n",
				v[i].label, (unsigned long long)v[i].st.memory_limit);
	PER_INSTANCE("treadle_instance_cpu_seconds_total", "counter", "CPU time of the instance's processes.", "%.6f",
		     (double)s->st.cpu_usec / 1e6);
	PER_INSTANCE("treadle_instance_cpu_periods_total", "counter", "CFS periods of the instance's cgroup.", "%llu",
		     (unsigned long long)s->st.cpu_periods);
	PER_INSTANCE("treadle_instance_cpu_throttled_periods_total", "counter",
		     "CFS periods in which the instance was throttled.", "%llu", (unsigned long long)s->st.cpu_throttled);
	PER_INSTANCE("treadle_instance_cpu_throttled_seconds_total", "counter", "Time the instance was throttled.",
		     "%.6f", (double)s->st.cpu_throttled_usec / 1e6);
	PER_INSTANCE("treadle_instance_io_read_bytes_total", "counter", "Bytes the instance read from block devices.",
		     "%llu", (unsigned long long)s->st.io_read_bytes);
	PER_INSTANCE("treadle_instance_io_written_bytes_total", "counter", "Bytes the instance wrote to block devices.",
		     "%llu", (unsigned long long)s->st.io_write_bytes);
	PER_INSTANCE("treadle_instance_oom_kills_total", "counter", "Processes of the instance killed by the OOM killer.",
		     "%llu", (unsigned long long)s->st.oom_kills);
	PER_INSTANCE("treadle_instance_restarts_total", "counter",
		     "Exits of the instance's services recorded by the node (each is followed by a restart or the end).",
		     "%zu", s->exits);
#undef PER_INSTANCE
	free(v);
	node_capacity(store, json_string_value(json_object_get(cfg, "hostname")), f);
	{
		/* the agent's loop latency: it rewrites this file as it loops (agent-metrics.h) */
		_cleanup_free_ char *mpath = strdup_printf("%s/" AGENT_METRICS_FILE, noderoot), *text = NULL;

		if (mpath && read_file(mpath, &text, NULL) >= 0)
			fputs(text, f);
	}
}

void api_metrics_master(struct store *s, const char *root, const char *host, size_t placed, FILE *f)
{
	_cleanup_free_ char *cfg_path = root ? strdup_printf("%s/node/" NODE_SETTINGS_FILE, root) : NULL;
	_cleanup_json_ json_t *cfg = cfg_path ? json_load_file(cfg_path, 0, NULL) : NULL;
	_cleanup_strv_free_ char **members = NULL;
	char lb[512];

	/* the cell's name of this host is the node agent's (cell up --hostname), else the system's */
	if (json_string_value(json_object_get(cfg, "hostname")))
		host = json_string_value(json_object_get(cfg, "hostname"));

	if (cellns_election_members(s, &members) < 0)
		members = NULL;
	METRIC(f, "treadle_master_candidates", "gauge", "Masters taking part in the leader election.");
	fprintf(f, "treadle_master_candidates %zu\n", strv_length(members));
	METRIC(f, "treadle_master_leader", "gauge", "1 for the leading master (label: its election node).");
	if (members && members[0])
		fprintf(f, "treadle_master_leader{member=\"%s\"} 1\n", label(members[0], lb, sizeof(lb)));
	METRIC(f, "treadle_master_leading_here", "gauge", "1 if the leading master runs on this host.");
	fprintf(f, "treadle_master_leading_here %d\n",
		members && members[0] && startswith(members[0], host) && members[0][strlen(host)] == '.');
	METRIC(f, "treadle_master_placed_instances", "gauge", "Instances the master has placed on a server (/placement).");
	fprintf(f, "treadle_master_placed_instances %zu\n", placed);
	/* the master of this host: its own counters (passes, pass durations, store events, leader state) */
	if (root) {
		_cleanup_free_ char *mpath = strdup_printf("%s/master-metrics.prom", root), *text = NULL;

		if (mpath && read_file(mpath, &text, NULL) >= 0)
			fputs(text, f);
	}
}
