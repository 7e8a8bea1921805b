/* merge.c: `treadle run` flags over a manifest, as Treadmill's cli/run.py. */
#include <string.h>

#include "../basic/util.h"
#include "manifest.h"
#include "merge.h"

#define OOM() error_sys(err, ENOMEM, "run")

/* The element of array a whose "name" is name, or NULL. */
static json_t *find_named(json_t *a, const char *name)
{
	size_t i;
	json_t *x;

	json_array_foreach(a, i, x)
		if (json_is_object(x) && json_is_string(json_object_get(x, "name")) &&
		    strcmp(json_string_value(json_object_get(x, "name")), name) == 0)
			return x;
	return NULL;
}

/* The command's service: its shell-quoted command line from manifest_add_command. */
static int set_command(json_t *m, const char *service, char *const *command, struct error *err)
{
	json_t *scratch = json_object(), *svcs = json_object_get(m, "services"), *svc, *cmd;
	int r;

	if (!scratch)
		return OOM();
	r = manifest_add_command(scratch, service, command, err);
	if (r < 0)
		goto out;
	svc = json_array_get(json_object_get(scratch, "services"), 0);
	if (!svcs) {
		svcs = json_array();
		if (!svcs || json_object_set_new(m, "services", svcs) < 0) {
			r = OOM();
			goto out;
		}
	}
	if (!json_is_array(svcs)) {
		r = error_set(err, ERR_PERM, 0, "services: must be a list");
		goto out;
	}
	cmd = json_object_get(svc, "command");
	r = 0;
	if (find_named(svcs, json_string_value(json_object_get(svc, "name")))) {
		if (json_object_set(find_named(svcs, json_string_value(json_object_get(svc, "name"))), "command", cmd) < 0)
			r = OOM();
	} else if (json_array_append(svcs, svc) < 0)
		r = OOM();
out:
	json_decref(scratch);
	return r;
}

static int set_restart(json_t *svc, const struct manifest_run_flags *f, struct error *err)
{
	json_t *rs = json_object_get(svc, "restart");

	if (!json_is_object(svc))
		return 0; /* validation names it */
	if (!json_is_object(rs)) {
		rs = json_object();
		if (!rs || json_object_set_new(svc, "restart", rs) < 0)
			return OOM();
	}
	if (f->restart_limit >= 0 && json_object_set_new(rs, "limit", json_integer(f->restart_limit)) < 0)
		return OOM();
	if (f->restart_interval >= 0 && json_object_set_new(rs, "interval", json_integer(f->restart_interval)) < 0)
		return OOM();
	return 0;
}

static int set_value(json_t *m, const char *key, const char *flag, const char *dflt, struct error *err)
{
	if (!flag && json_object_get(m, key))
		return 0;
	return json_object_set_new(m, key, json_string(flag ? flag : dflt)) < 0 ? OOM() : 0;
}

int manifest_merge_run(json_t *m, const struct manifest_run_flags *f, struct error *err)
{
	bool command = f->command && f->command[0];
	const char *service = f->service;
	json_t *svcs, *eps, *x;
	size_t i;
	int r;

	if (!json_is_object(m))
		return error_set(err, ERR_PERM, 0, "the manifest must be a mapping");
	if (command) {
		r = set_command(m, service, f->command, err);
		if (r < 0)
			return r;
		if (!service) {
			service = strrchr(f->command[0], '/');
			service = service ? service + 1 : f->command[0];
		}
	}
	svcs = json_object_get(m, "services");
	if (service && !command && !find_named(svcs, service))
		return error_set(err, ERR_PERM, 0, "--service %s: the manifest has no service of that name", service);
	if (f->restart_limit >= 0 || f->restart_interval >= 0) {
		if (service)
			r = set_restart(find_named(svcs, service), f, err);
		else {
			r = 0;
			json_array_foreach(svcs, i, x)
				if ((r = set_restart(x, f, err)) < 0)
					break;
		}
		if (r < 0)
			return r;
	}
	if (json_array_size(f->endpoints)) {
		eps = json_object_get(m, "endpoints");
		if (!eps) {
			eps = json_array();
			if (!eps || json_object_set_new(m, "endpoints", eps) < 0)
				return OOM();
		}
		if (!json_is_array(eps))
			return error_set(err, ERR_PERM, 0, "endpoints: must be a list");
		json_array_foreach(f->endpoints, i, x) {
			json_t *old = find_named(eps, json_string_value(json_object_get(x, "name")));

			if (old ? json_object_update(old, x) < 0 : json_array_append(eps, x) < 0)
				return OOM();
		}
	}
	if ((r = set_value(m, "memory", f->memory, "100M", err)) < 0 ||
	    (r = set_value(m, "cpu", f->cpu, "10%", err)) < 0 || (r = set_value(m, "disk", f->disk, "100M", err)) < 0)
		return r;
	return 0;
}
