/* cg-v2.c: cgroup v2 (unified) backend.  Tested against a fake cgroupfs tree
 * (tests/unit/test-cgroup-v2.c): this machine's cgroup2 mount has no
 * resource controllers. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <linux/bpf.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>

#include "../basic/util.h"
#include "cgroup-internal.h"

/* Enable in the parent's subtree_control the controllers we use that the parent offers. */
static int v2_init_group(struct cg *cg, const struct cg_hier *h, const char *parent_dir, const char *dir,
			 bool existed)
{
	static const char *const wanted[] = { "memory", "cpu", "pids", "io", "cpuset" };
	_cleanup_free_ char *avail = NULL;
	int r;

	r = cg_read_knob(parent_dir, "cgroup.controllers", &avail);
	if (r < 0)
		return r == -ENOENT ? 0 : r;
	for (size_t i = 0; i < ELEMENTSOF(wanted); i++) {
		char buf[32];
		bool found = false;
		_cleanup_free_ char *copy = strdup(avail);

		if (!copy)
			return -ENOMEM;
		for (char *s = copy, *tok; (tok = strsep(&s, " \n"));)
			found |= strcmp(tok, wanted[i]) == 0;
		if (!found)
			continue;
		snprintf(buf, sizeof(buf), "+%s", wanted[i]);
		if (cg->flags & CG_OPEN_FAKE) {
			/* the fake tree records the enabled set and offers it to the child */
			_cleanup_free_ char *cur = NULL, *next = NULL;
			(void)cg_read_knob(parent_dir, "cgroup.subtree_control", &cur);
			next = strdup_printf("%s%s%s", cur && *cur ? cur : "", cur && *cur ? " " : "", wanted[i]);
			if (!next)
				return -ENOMEM;
			if (!cur || !strstr(cur, wanted[i]))
				r = cg_write_knob(cg, parent_dir, "cgroup.subtree_control", next);
			else
				r = 0;
		} else {
			r = cg_write_knob(cg, parent_dir, "cgroup.subtree_control", buf);
		}
		if (r < 0)
			return r;
	}
	if ((cg->flags & CG_OPEN_FAKE) && !existed) {
		_cleanup_free_ char *sc = NULL;
		(void)cg_read_knob(parent_dir, "cgroup.subtree_control", &sc);
		r = cg_write_knob(cg, dir, "cgroup.controllers", sc ? sc : "");
		if (r >= 0)
			r = cg_write_knob(cg, dir, "cgroup.procs", "");
		if (r >= 0)
			r = cg_write_knob(cg, dir, "memory.events", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n");
		if (r < 0)
			return r;
	}
	return 0;
}

static int v2_set_limits(struct cg *cg, const struct cg_hier *h, const char *dir, const struct cg_limits *l,
			 struct error *err)
{
	char buf[96];
	int r;

#define KNOB(name, ...)                                                                      \
	do {                                                                                 \
		snprintf(buf, sizeof(buf), __VA_ARGS__);                                     \
		r = cg_write_knob(cg, dir, name, buf);                                       \
		if (r < 0)                                                                   \
			return error_sys(err, r, "cgroups: %s/%s = %s", dir, name, buf);     \
	} while (0)

	if (l->memory_max) {
		KNOB("memory.max", "%llu", (unsigned long long)l->memory_max);
		KNOB("memory.swap.max", "0");
	}
	if (l->memory_soft || l->memory_max)
		KNOB("memory.low", "%llu", (unsigned long long)(l->memory_soft ? l->memory_soft : l->memory_max));
	if (l->cpu_percent) {
		unsigned w = l->cpu_percent > 10000 ? 10000 : l->cpu_percent;
		KNOB("cpu.weight", "%u", w ? w : 1);
		KNOB("cpu.max", "%llu 100000", (unsigned long long)l->cpu_percent * 1000);
	}
	if (l->pids_max)
		KNOB("pids.max", "%llu", (unsigned long long)l->pids_max);
	if (l->io_dev && (l->io_read_bps || l->io_write_bps)) {
		char rb[32] = "max", wb[32] = "max";
		if (l->io_read_bps)
			snprintf(rb, sizeof(rb), "%llu", (unsigned long long)l->io_read_bps);
		if (l->io_write_bps)
			snprintf(wb, sizeof(wb), "%llu", (unsigned long long)l->io_write_bps);
		KNOB("io.max", "%u:%u rbps=%s wbps=%s", major(l->io_dev), minor(l->io_dev), rb, wb);
	}
#undef KNOB
	return 0;
}

static int v2_oom_fd(struct cg *cg, const char *memdir, int *ret_fd, struct error *err)
{
	_cleanup_free_ char *ev = strdup_printf("%s/memory.events", memdir);
	_cleanup_close_ int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);

	if (!ev)
		return error_sys(err, ENOMEM, "cgroups");
	if (fd < 0)
		return error_sys(err, errno, "cgroups: inotify");
	if (inotify_add_watch(fd, ev, IN_MODIFY) < 0)
		return error_sys(err, errno, "cgroups: watch %s", ev);
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static int v2_oom_check(struct cg *cg, const char *memdir, uint64_t *ret)
{
	return cg_read_keyed(memdir, "memory.events", "oom_kill", ret);
}

/* ---- devices: a BPF_PROG_TYPE_CGROUP_DEVICE program, hand-assembled as
 * crun and runc do.  Context: struct bpf_cgroup_dev_ctx { u32 access_type
 * (access << 16 | type); u32 major; u32 minor; }.  Return 1 = allow. */

#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define LDX_W(d, s, o) INSN(BPF_LDX | BPF_W | BPF_MEM, d, s, o, 0)
#define ALU32_K(op, d, i) INSN(BPF_ALU | (op) | BPF_K, d, 0, 0, i)
#define MOV32_X(d, s) INSN(BPF_ALU | BPF_MOV | BPF_X, d, s, 0, 0)
#define MOV64_K(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define JNE_K(d, i, o) INSN(BPF_JMP | BPF_JNE | BPF_K, d, 0, o, i)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

/* The BPF_PROG_TYPE_CGROUP_DEVICE program for allow[0..n): returns 1 (allow)
 * when a request matches an entry, else 0; *ret (struct bpf_insn[], owned)
 * with *ret_n instructions. */
static int cg_bpf_devices_program(const struct cg_device *allow, size_t n, struct bpf_insn **ret, size_t *ret_n)
{
	const unsigned all = CG_DEV_MKNOD | CG_DEV_READ | CG_DEV_WRITE;
	/* prologue 6, at most 8 per entry, epilogue 2 */
	_cleanup_free_ struct bpf_insn *p = calloc(6 + 8 * n + 2, sizeof(*p));
	size_t k = 0;

	if (!p)
		return -ENOMEM;
	p[k++] = LDX_W(BPF_REG_2, BPF_REG_1, 0); /* r2 = type */
	p[k++] = ALU32_K(BPF_AND, BPF_REG_2, 0xffff);
	p[k++] = LDX_W(BPF_REG_3, BPF_REG_1, 0); /* r3 = access */
	p[k++] = ALU32_K(BPF_RSH, BPF_REG_3, 16);
	p[k++] = LDX_W(BPF_REG_4, BPF_REG_1, 4); /* r4 = major */
	p[k++] = LDX_W(BPF_REG_5, BPF_REG_1, 8); /* r5 = minor */
	for (size_t i = 0; i < n; i++) {
		const struct cg_device *d = &allow[i];
		bool by_type = d->type != 'a', by_access = (d->access & all) != all;
		int len = (by_type ? 1 : 0) + (by_access ? 3 : 0) + (d->major >= 0) + (d->minor >= 0) + 2;
		size_t start = k;

		if (d->type != 'a' && d->type != 'b' && d->type != 'c')
			return -EINVAL;
		/* each test jumps to the next entry (start + len) when it fails */
#define SKIP ((short)(start + (size_t)len - k - 1))
		if (by_type)
			p[k] = JNE_K(BPF_REG_2, d->type == 'c' ? BPF_DEVCG_DEV_CHAR : BPF_DEVCG_DEV_BLOCK, 0), p[k].off = SKIP, k++;
		if (by_access) {
			/* every requested bit must be in the entry: (r3 & ~access) == 0 */
			p[k++] = MOV32_X(BPF_REG_1, BPF_REG_3);
			p[k++] = ALU32_K(BPF_AND, BPF_REG_1, (int)(~d->access & all));
			p[k] = JNE_K(BPF_REG_1, 0, 0), p[k].off = SKIP, k++;
		}
		if (d->major >= 0)
			p[k] = JNE_K(BPF_REG_4, d->major, 0), p[k].off = SKIP, k++;
		if (d->minor >= 0)
			p[k] = JNE_K(BPF_REG_5, d->minor, 0), p[k].off = SKIP, k++;
#undef SKIP
		p[k++] = MOV64_K(BPF_REG_0, 1);
		p[k++] = EXIT();
	}
	p[k++] = MOV64_K(BPF_REG_0, 0);
	p[k++] = EXIT();
	*ret = TAKE_PTR(p);
	*ret_n = k;
	return 0;
}

static int bpf_call(int cmd, union bpf_attr *a)
{
	long r = syscall(SYS_bpf, cmd, a, sizeof(*a));

	return r < 0 ? negerrno() : (int)r;
}

/* Programs attached to the group now (ids); at most ELEMENTSOF(ids). */
static int bpf_attached(int dirfd, uint32_t *ids, uint32_t max)
{
	union bpf_attr a;
	int r;

	memset(&a, 0, sizeof(a));
	a.query.target_fd = (uint32_t)dirfd;
	a.query.attach_type = BPF_CGROUP_DEVICE;
	a.query.prog_ids = (uint64_t)(uintptr_t)ids;
	a.query.prog_cnt = max;
	r = bpf_call(BPF_PROG_QUERY, &a);
	return r < 0 ? r : (int)a.query.prog_cnt;
}

/* Attach the new program (if any) next to the old ones, then detach the old:
 * with BPF_F_ALLOW_MULTI every attached program must allow, so the group is
 * never without a list in between. */
static int v2_set_devices(struct cg *cg, const struct cg_hier *h, const char *dir, const struct cg_device *allow,
			  size_t n, struct error *err)
{
	_cleanup_free_ struct bpf_insn *insns = NULL;
	_cleanup_close_ int dirfd = -1, progfd = -1;
	uint32_t old[64];
	union bpf_attr a;
	size_t ni = 0;
	int r, n_old;

	if (allow) {
		r = cg_bpf_devices_program(allow, n, &insns, &ni);
		if (r < 0)
			return error_sys(err, r, "cgroups: device program");
	}
	if (cg->flags & CG_OPEN_FAKE) {
		/* no BPF on a plain directory: record the list as v1 would take it */
		_cleanup_free_ char *rules = NULL;
		r = allow ? cg_devices_format(allow, n, &rules) : 0;
		if (r >= 0)
			r = cg_write_knob(cg, dir, "treadle.devices", rules ? rules : "a *:* rwm\n");
		return r < 0 ? error_sys(err, r, "cgroups: %s/treadle.devices", dir) : 0;
	}
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return error_sys(err, errno, "cgroups: %s", dir);
	n_old = bpf_attached(dirfd, old, ELEMENTSOF(old));
	if (n_old < 0)
		return error_sys(err, n_old, "cgroups: %s: query device programs", dir);
	if (allow) {
		memset(&a, 0, sizeof(a));
		a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
		a.insns = (uint64_t)(uintptr_t)insns;
		a.insn_cnt = (uint32_t)ni;
		a.license = (uint64_t)(uintptr_t) "GPL";
		progfd = bpf_call(BPF_PROG_LOAD, &a);
		if (progfd < 0)
			return error_sys(err, progfd, "cgroups: load the device program");
		memset(&a, 0, sizeof(a));
		a.target_fd = (uint32_t)dirfd;
		a.attach_bpf_fd = (uint32_t)progfd;
		a.attach_type = BPF_CGROUP_DEVICE;
		a.attach_flags = BPF_F_ALLOW_MULTI;
		r = bpf_call(BPF_PROG_ATTACH, &a);
		if (r < 0)
			return error_sys(err, r, "cgroups: %s: attach the device program", dir);
	}
	for (int i = 0; i < n_old; i++) {
		_cleanup_close_ int fd = -1;

		memset(&a, 0, sizeof(a));
		a.prog_id = old[i];
		fd = bpf_call(BPF_PROG_GET_FD_BY_ID, &a);
		if (fd == -ENOENT)
			continue; /* gone meanwhile */
		if (fd < 0)
			return error_sys(err, fd, "cgroups: %s: device program %u", dir, old[i]);
		memset(&a, 0, sizeof(a));
		a.target_fd = (uint32_t)dirfd;
		a.attach_bpf_fd = (uint32_t)fd;
		a.attach_type = BPF_CGROUP_DEVICE;
		r = bpf_call(BPF_PROG_DETACH, &a);
		if (r < 0 && r != -ENOENT)
			return error_sys(err, r, "cgroups: %s: detach device program %u", dir, old[i]);
	}
	return 0;
}

static int v2_kill(struct cg *cg, const char *dir)
{
	if (cg->flags & CG_OPEN_FAKE)
		return 0;
	return cg_write_knob(cg, dir, "cgroup.kill", "1");
}

const struct cg_backend cg_backend_v2 = {
	.version = CG_V2,
	.init_group = v2_init_group,
	.set_limits = v2_set_limits,
	.oom_fd = v2_oom_fd,
	.oom_check = v2_oom_check,
	.set_devices = v2_set_devices,
	.kill = v2_kill,
};
