/* security.c: what a service's run script execs inside the container:
 * join the app cgroup, drop to the proid with no capabilities and
 * no_new_privs, install the default seccomp filter, exec. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <sched.h>
#include <seccomp.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/capability.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "container-internal.h"

/* Denied with EPERM for every service (docs/CONTAINER.md "seccomp"). */
static const char *const denied[] = {
	/* kernel, modules, reboot, swap, clock */
	"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot", "swapon",
	"swapoff", "acct", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "syslog", "iopl", "ioperm",
	"quotactl", "lookup_dcookie", "nfsservctl", "vhangup", "create_module", "get_kernel_syms", "query_module",
	"uselib", "_sysctl",
	/* mounting and namespaces */
	"mount", "umount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
	"open_tree", "mount_setattr", "setns", "unshare", "sethostname", "setdomainname",
	/* keyring */
	"add_key", "request_key", "keyctl",
	/* kernel attack surface a contained app does not need */
	"bpf", "perf_event_open", "userfaultfd", "open_by_handle_at", "name_to_handle_at", "kcmp",
	"process_vm_writev",
};

/* Install the default seccomp filter in the calling process (docs/CONTAINER.md
 * lists what it denies, with EPERM). */
static int container_seccomp_apply(struct error *err)
{
	static const unsigned long ns_flags[] = { CLONE_NEWNS,	CLONE_NEWUTS, CLONE_NEWIPC,   CLONE_NEWUSER,
						  CLONE_NEWPID, CLONE_NEWNET, CLONE_NEWCGROUP };
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int r = 0;

	if (!ctx)
		return error_sys(err, ENOMEM, "seccomp");
	for (size_t i = 0; i < ELEMENTSOF(denied); i++) {
		int nr = seccomp_syscall_resolve_name(denied[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not on this architecture */
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0);
		if (r < 0)
			goto out;
	}
	/* new namespaces through clone flags (one rule per flag: any set = EPERM);
	 * clone3 hides its flags in memory, so it answers ENOSYS and libc falls
	 * back to clone */
	for (size_t i = 0; i < ELEMENTSOF(ns_flags); i++) {
		r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
				     SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
		if (r < 0)
			goto out;
	}
	r = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	if (r < 0)
		goto out;
	r = seccomp_load(ctx);
out:
	seccomp_release(ctx);
	return r < 0 ? error_sys(err, r, "seccomp") : 0;
}

/* Move the caller into the app cgroup: "0" written to each bound cgroup.procs. */
static int join_app_cgroup(struct error *err)
{
	_cleanup_strv_free_ char **files = NULL;
	int r = dir_list(CONTAINER_CGROUP_DIR, 1, &files);

	if (r == -ENOENT)
		return 0; /* not in a treadle container (tests, host) */
	if (r < 0)
		return error_sys(err, r, "exec-as: %s", CONTAINER_CGROUP_DIR);
	for (size_t i = 0; files && files[i]; i++) {
		_cleanup_free_ char *p = strdup_printf("%s/%s", CONTAINER_CGROUP_DIR, files[i]);
		if (!p)
			return error_sys(err, ENOMEM, "exec-as");
		r = write_string_file(p, "0");
		if (r < 0)
			return error_sys(err, r, "exec-as: join app cgroup (%s)", p);
	}
	return 0;
}

static int drop_privileges(const struct passwd *pw, struct error *err)
{
	cap_t none;

	if (initgroups(pw->pw_name, pw->pw_gid) < 0)
		return error_sys(err, errno, "exec-as: initgroups %s", pw->pw_name);
	/* empty the bounding set while we still hold CAP_SETPCAP */
	for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
			return error_sys(err, errno, "exec-as: drop capability %d from the bounding set", cap);
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	if (setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0)
		return error_sys(err, errno, "exec-as: setgid %u", (unsigned)pw->pw_gid);
	if (setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0)
		return error_sys(err, errno, "exec-as: setuid %u", (unsigned)pw->pw_uid);
	/* setuid cleared permitted/effective already; make sure */
	none = cap_init();
	if (!none || cap_set_proc(none) < 0) {
		int e = errno;
		cap_free(none);
		return error_sys(err, e, "exec-as: clear capabilities");
	}
	cap_free(none);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return error_sys(err, errno, "exec-as: no_new_privs");
	return 0;
}

/* Root services keep root's capabilities but CAP_MKNOD: out of the bounding
 * set (no exec gets it back) and out of every set of this process. */
static int drop_mknod(struct error *err)
{
	cap_value_t v = CAP_MKNOD;
	cap_t caps;
	int r = 0;

	/* (a caller without CAP_SETPCAP, not root, has no CAP_MKNOD to lose) */
	if (prctl(PR_CAPBSET_READ, CAP_MKNOD, 0, 0, 0) == 1 && prctl(PR_CAPBSET_DROP, CAP_MKNOD, 0, 0, 0) < 0 &&
	    geteuid() == 0)
		return error_sys(err, errno, "exec-as: drop CAP_MKNOD from the bounding set");
	(void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_MKNOD, 0, 0);
	caps = cap_get_proc();
	if (!caps || cap_set_flag(caps, CAP_EFFECTIVE, 1, &v, CAP_CLEAR) < 0 ||
	    cap_set_flag(caps, CAP_PERMITTED, 1, &v, CAP_CLEAR) < 0 ||
	    cap_set_flag(caps, CAP_INHERITABLE, 1, &v, CAP_CLEAR) < 0 || cap_set_proc(caps) < 0)
		r = error_sys(err, errno ? errno : ENOMEM, "exec-as: drop CAP_MKNOD");
	cap_free(caps);
	return r;
}

int container_exec_as(const char *user, bool as_root, char *const *argv, struct error *err)
{
	struct passwd *pw = NULL;
	_cleanup_free_ char *shell = NULL, *argv0 = NULL;
	char *login[2] = { NULL, NULL };
	int r;

	r = join_app_cgroup(err);
	if (r < 0)
		return r;
	errno = 0;
	pw = getpwnam(user ? user : "root");
	if (!pw)
		return error_set(err, ERR_PERM, 0, "exec-as: no such user '%s'", user ? user : "root");
	if (pw) {
		if (setenv("HOME", pw->pw_dir, 1) < 0 || setenv("USER", pw->pw_name, 1) < 0 ||
		    setenv("LOGNAME", pw->pw_name, 1) < 0)
			return error_sys(err, errno, "exec-as: environment");
		if (!argv || !argv[0]) {
			/* service accounts often have nologin/false: a shell is what exec wants */
			const char *sh = pw->pw_shell && *pw->pw_shell && !endswith(pw->pw_shell, "/nologin") &&
						 !endswith(pw->pw_shell, "/false")
					 ? pw->pw_shell
					 : "/bin/sh";
			shell = strdup(sh);
			const char *b = shell ? strrchr(shell, '/') : NULL;
			argv0 = shell ? strdup_printf("-%s", b ? b + 1 : shell) : NULL;
			if (!argv0)
				return error_sys(err, ENOMEM, "exec-as");
			login[0] = argv0;
		}
	}
	if (!as_root && pw && pw->pw_uid != 0) {
		r = drop_privileges(pw, err);
		if (r < 0)
			return r;
	} else {
		r = drop_mknod(err);
		if (r < 0)
			return r;
	}
	if (pw && chdir(pw->pw_dir) < 0)
		(void)!chdir("/");
	r = container_seccomp_apply(err);
	if (r < 0)
		return r;
	if (login[0]) {
		execv(shell, login);
		return error_sys(err, errno, "exec-as: exec %s", shell);
	}
	if (!argv || !argv[0])
		return error_set(err, ERR_USAGE, 0, "exec-as: no command");
	execvp(argv[0], argv);
	return error_sys(err, errno, "exec-as: exec %s", argv[0]);
}
