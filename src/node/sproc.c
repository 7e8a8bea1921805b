/* sproc.c: the node's s6-script side (see sproc.h). */
#include <inttypes.h>
#include <limits.h>
#include <ctype.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "../basic/fileio.h"
#include "../basic/json.h"
#include "../cgroup/cg.h"
#include "../container/container.h"
#include "../basic/util.h"
#include "../supervisor/supervisor.h"
#include "../trace/trace.h"
#include "node-internal.h"

int sproc_event_post(const char *appevents_dir, const char *instance, const char *type, const char *data,
		     const char *payload)
{
	_cleanup_free_ char *tmp = NULL;
	double ts = now_realtime();
	int r;

	if (strchr(instance, '/') || strchr(type, '/') || (data && strchr(data, '/')))
		return -EINVAL;
	tmp = strdup_printf("%s/.event.%d.%08x", appevents_dir, (int)getpid(), (unsigned)random());
	if (!tmp)
		return -ENOMEM;
	r = sv_write_file(tmp, payload ? payload : "", payload ? strlen(payload) : 0, 0644);
	if (r < 0)
		return r;
	/* two events of the same instance, type and data within one millisecond
	 * would share a name: never replace, move the later one by 1 ms */
	for (int i = 0; i < 1000; i++, ts += 0.001) {
		_cleanup_free_ char *path = strdup_printf("%s/%.3f,%s,%s,%s", appevents_dir, ts, instance, type,
							  data ? data : "");
		if (!path) {
			r = -ENOMEM;
			break;
		}
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
			return 0;
		r = negerrno();
		if (r != -EEXIST)
			break;
	}
	unlink(tmp);
	return r;
}

char *sproc_cgroup_path(const char *unique)
{
	return strdup_printf("apps/%s/services", unique);
}

int sproc_container_scripts(const struct node_settings *ns, const char *instance, const char *unique,
			    char **ret_run, char **ret_finish, char **ret_log)
{
	_cleanup_free_ char *bin = shell_quote(ns->treadle_bin), *root = shell_quote(ns->root);
	_cleanup_free_ char *id = shell_quote(unique), *tomb = NULL, *tq = NULL;
	_cleanup_free_ char *run = NULL, *fin = NULL, *log = NULL;

	tomb = strdup_printf("%s/" NODE_DIR_TOMB_RUNNING, ns->root);
	tq = tomb ? shell_quote(tomb) : NULL;
	if (!bin || !root || !id || !tq)
		return -ENOMEM;
	/* the node's settings are in N/node.json: only the root crosses */
	run = strdup_printf("#!/bin/sh\nexec 2>&1 </dev/null\nexec %s sproc run --root %s\n", bin, root);
	fin = strdup_printf("#!/bin/sh\nexec >>data/finish.log 2>&1 </dev/null\n"
			    "exec %s sproc finish --limit 0 --interval 60 --tombstones %s --id %s -- \"$1\" \"$2\"\n",
			    bin, tq, id);
	log = strdup(CONTAINER_LOG_RUN);
	if (!run || !fin || !log)
		return -ENOMEM;
	*ret_run = TAKE_PTR(run);
	*ret_finish = TAKE_PTR(fin);
	*ret_log = TAKE_PTR(log);
	return 0;
}

/* ---- N/node.json ---- */

int sproc_settings_write(const struct node_settings *ns)
{
	_cleanup_free_ char *path = node_path(ns->root, NODE_SETTINGS_FILE), *text = NULL;
	_cleanup_json_ json_t *j = json_pack("{s:s, s:s, s:s?, s:s?, s:s?, s:I, s:I, s:I, s:I}", "treadle",
					     ns->treadle_bin, "cgroup_root", ns->cgroup_root ? ns->cgroup_root : "treadle",
					     "hostname", ns->hostname, "cell", ns->cell, "store", ns->store_url,
					     "setup_timeout_s", (json_int_t)ns->setup_timeout_s, "pids_max",
					     (json_int_t)ns->pids_max, "disk_read_bps", (json_int_t)ns->disk_read_bps,
					     "disk_write_bps", (json_int_t)ns->disk_write_bps);

	if (!path || !j)
		return -ENOMEM;
	if (ns->net_bridge &&
	    json_object_set_new(j, "network",
				json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "bridge", ns->net_bridge, "table", ns->net_table,
					  "range", ns->net_range, "gateway", ns->net_gateway, "external_ip",
					  ns->net_external_ip, "mtu", (json_int_t)ns->net_mtu)) < 0)
		return -ENOMEM;
	if (ns->hooks && (json_object_set_new(j, "hooks", json_string(ns->hooks)) < 0 ||
			  json_object_set_new(j, "krb5", json_pack("{s:s?, s:s?, s:I}", "keytab", ns->krb5_keytab, "config",
								   ns->krb5_config, "tickets_wait_s",
								   (json_int_t)ns->tickets_wait_s)) < 0))
		return -ENOMEM;
	if (!(text = json_dumps(j, JSON_SORT_KEYS | JSON_INDENT(2))))
		return -ENOMEM;
	return write_file_atomic(path, text, strlen(text), 0644);
}

static int settings_u64(const json_t *j, const char *key, uint64_t *ret)
{
	const json_t *v = json_object_get(j, key);

	if (!v) {
		*ret = 0;
		return 0;
	}
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -EINVAL;
	*ret = (uint64_t)json_integer_value(v);
	return 0;
}

int sproc_settings_read(const char *root, struct node_settings *ret, json_t **ret_owner, struct error *err)
{
	static const char *const u64s[] = { "setup_timeout_s", "pids_max", "disk_read_bps", "disk_write_bps" };
	_cleanup_free_ char *path = node_path(root, NODE_SETTINGS_FILE), *text = NULL;
	_cleanup_json_ json_t *j = NULL;
	struct node_settings ns = { .root = root };
	uint64_t v[ELEMENTSOF(u64s)];
	json_error_t je;
	int r;

	if (!path)
		return error_sys(err, ENOMEM, "node settings");
	r = read_file(path, &text, NULL);
	if (r < 0)
		return error_set(err, ERR_TEMP, -r, "%s: cannot read the node's settings (is the node agent running?)",
				 path);
	j = json_loads(text, 0, &je);
	if (!json_is_object(j))
		return error_set(err, ERR_PERM, 0, "%s: not a JSON object", path);
	ns.treadle_bin = sproc_jstr(j, "treadle");
	ns.cgroup_root = sproc_jstr(j, "cgroup_root");
	ns.hostname = sproc_jstr(j, "hostname");
	ns.cell = sproc_jstr(j, "cell");
	ns.store_url = sproc_jstr(j, "store");
	if (!ns.treadle_bin || !ns.cgroup_root)
		return error_set(err, ERR_PERM, 0, "%s: field %s missing", path, ns.treadle_bin ? "cgroup_root" : "treadle");
	for (size_t i = 0; i < ELEMENTSOF(u64s); i++)
		if (settings_u64(j, u64s[i], &v[i]) < 0)
			return error_set(err, ERR_PERM, 0, "%s: field %s: expected a non-negative integer", path, u64s[i]);
	if (v[0] > UINT_MAX)
		return error_set(err, ERR_PERM, 0, "%s: field setup_timeout_s: out of range", path);
	ns.setup_timeout_s = (unsigned)v[0];
	ns.pids_max = v[1];
	ns.disk_read_bps = v[2];
	ns.disk_write_bps = v[3];
	if (json_object_get(j, "network")) {
		const json_t *n = json_object_get(j, "network"), *mtu = json_object_get(n, "mtu");
		static const char *const keys[] = { "bridge", "table", "range", "gateway", "external_ip" };
		const char **dst[] = { &ns.net_bridge, &ns.net_table, &ns.net_range, &ns.net_gateway, &ns.net_external_ip };

		for (size_t i = 0; i < ELEMENTSOF(keys); i++)
			if (!(*dst[i] = sproc_jstr(n, keys[i])))
				return error_set(err, ERR_PERM, 0, "%s: field network.%s missing", path, keys[i]);
		if (!json_is_integer(mtu) || json_integer_value(mtu) < 0 || json_integer_value(mtu) > 65535)
			return error_set(err, ERR_PERM, 0, "%s: field network.mtu: expected 0..65535", path);
		ns.net_mtu = (unsigned)json_integer_value(mtu);
	}
	if (json_object_get(j, "hooks")) {
		const json_t *k = json_object_get(j, "krb5"), *w = json_object_get(k, "tickets_wait_s");

		if (!(ns.hooks = sproc_jstr(j, "hooks")))
			return error_set(err, ERR_PERM, 0, "%s: field hooks: expected a string", path);
		ns.krb5_keytab = sproc_jstr(k, "keytab");
		ns.krb5_config = sproc_jstr(k, "config");
		if (w && (!json_is_integer(w) || json_integer_value(w) < 0 || json_integer_value(w) > 86400))
			return error_set(err, ERR_PERM, 0, "%s: field krb5.tickets_wait_s: expected 0..86400", path);
		ns.tickets_wait_s = w ? (unsigned)json_integer_value(w) : 0;
	}
	*ret = ns;
	*ret_owner = TAKE_PTR(j);
	return 0;
}

int sproc_ctl_create(const char *container_dir)
{
	_cleanup_free_ char *e = strdup_printf("%s/" SPROC_CTL_REL "/appevents", container_dir);
	_cleanup_free_ char *t = strdup_printf("%s/" SPROC_CTL_REL "/tombstones", container_dir);
	int r;

	if (!e || !t)
		return -ENOMEM;
	r = mkdir_p(e, 0755);
	return r < 0 ? r : mkdir_p(t, 0755);
}

static bool ctl_event_ok(const char *name, const char *instance)
{
	static const char *const types[] = { "service_running", "service_exited", "aborted" };
	_cleanup_free_ char *copy = strdup(name);
	char *p, *inst, *type;

	if (!copy || !(p = strchr(copy, ',')))
		return false;
	inst = p + 1;
	if (!(p = strchr(inst, ',')))
		return false;
	*p = 0;
	type = p + 1;
	if (!(p = strchr(type, ',')))
		return false;
	*p = 0;
	if (strcmp(inst, instance))
		return false;
	for (size_t i = 0; i < ELEMENTSOF(types); i++)
		if (!strcmp(type, types[i]))
			return true;
	return false;
}

int sproc_ctl_drain(const char *root, const char *unique)
{
	static const char *const kinds[] = { "appevents", "tombstones" };
	_cleanup_free_ char *inst = node_unique_instance(unique);
	int moved = 0;

	if (!inst)
		return -EINVAL;
	for (size_t k = 0; k < ELEMENTSOF(kinds); k++) {
		_cleanup_free_ char *dir = strdup_printf("%s/" NODE_DIR_APPS "/%s/" SPROC_CTL_REL "/%s", root, unique, kinds[k]);
		_cleanup_free_ char *dest = node_path(root, k == 0 ? NODE_DIR_APPEVENTS : NODE_DIR_TOMB_SERVICES);
		_cleanup_strv_free_ char **l = NULL;

		if (!dir || !dest)
			return -ENOMEM;
		if (dir_list(dir, 1, &l) < 0)
			continue;
		for (char **f = l; *f; f++) {
			_cleanup_free_ char *from = strdup_printf("%s/%s", dir, *f), *to = strdup_printf("%s/%s", dest, *f);
			_cleanup_free_ char *id = NULL;
			struct sv_exit e;
			bool ok;

			if (!from || !to)
				return -ENOMEM;
			if (k == 0)
				ok = ctl_event_ok(*f, inst);
			else
				ok = sv_tombstone_parse(*f, &id, &e) == 0 && startswith(id, unique) &&
				     id[strlen(unique)] == ',' && !strchr(id + strlen(unique) + 1, ',');
			if (ok && rename(from, to) == 0)
				moved++;
			else
				(void)unlink(from);
		}
	}
	return moved;
}

int sproc_flag_aborted(const char *container_dir, const char *why, const char *payload)
{
	_cleanup_free_ char *p = strdup_printf("%s/data/aborted", container_dir), *s = NULL;
	_cleanup_json_ json_t *o = NULL;

	if (!p)
		return -ENOMEM;
	if (path_exists(p))
		return 0;
	o = json_pack("{s:s, s:s?}", "why", why, "payload", payload);
	if (!o)
		return -ENOMEM;
	s = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
	if (!s)
		return -ENOMEM;
	return sv_write_file(p, s, strlen(s), 0644);
}

/* ---- helpers of the sproc jobs (sproc-*.c) ---- */

const char *sproc_jstr(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : NULL;
}

long long sproc_jint(const json_t *o, const char *k, long long dflt)
{
	const json_t *v = json_object_get(o, k);

	return json_is_integer(v) ? json_integer_value(v) : dflt;
}

bool sproc_service_name_ok(const char *s)
{
	if (!s || !*s || strlen(s) > 60 || s[0] == '.')
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '_' ||
		      *p == '-' || *p == '.'))
			return false;
	return true;
}

char *sproc_exits_history_path(const char *root, const char *instance, const char *service)
{
	return strdup_printf("%s/" NODE_DIR_EXITS "/%s/%s", root, instance, service);
}
