/* cgroup v2 backend against a fake cgroupfs tree (this machine's cgroup2
 * mount has no resource controllers). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <signal.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/syscall.h>
#include <cmocka.h>

#include "../../src/basic/fileio.h"
#include "../../src/basic/util.h"
#include "../../src/cgroup/cg.h"
#include "../../src/cgroup/cgroup-internal.h"
#include "cgroup-test.h"
/* cg_bpf_devices_program is file-local (cg-v2.c loads it): compiled in. */
#include "../../src/cgroup/cg-v2.c"

static char tmpl[] = "/tmp/treadle-cgv2.XXXXXX";

static int setup(void **state)
{
	_cleanup_free_ char *p = NULL;

	if (!mkdtemp(tmpl))
		return -1;
	p = strdup_printf("%s/cgroup.controllers", tmpl);
	if (write_file_atomic(p, "cpuset cpu io memory hugetlb pids rdma misc\n", 44, 0644) < 0)
		return -1;
	free(p);
	p = strdup_printf("%s/cgroup.subtree_control", tmpl);
	return write_file_atomic(p, "", 0, 0644) < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	rm_rf(tmpl);
	return 0;
}

static char *knob(const char *rel)
{
	return cgt_read(tmpl, rel, true);
}

#define assert_knob(rel, want)                           \
	do {                                             \
		_cleanup_free_ char *_v = knob(rel);     \
		assert_non_null(_v);                     \
		assert_string_equal(_v, want);           \
	} while (0)

static void test_detect_and_limits(void **state)
{
	struct cg *cg = NULL;
	struct error err = ERROR_INIT;
	struct cg_limits l = { .memory_max = 16 << 20, .memory_soft = 8 << 20, .cpu_percent = 20, .pids_max = 64,
			       .io_dev = makedev(7, 3), .io_write_bps = 1000000 };

	assert_int_equal(cg_open(tmpl, "tr-fake", CG_OPEN_FAKE, &cg, &err), 0);
	assert_int_equal(cg->ops->version, CG_V2);
	assert_int_equal(cg_create(cg, "apps/u1/services", &l, &err), 0);
	assert_int_equal(cg_create(cg, "apps/u1/sys", NULL, &err), 0);
	assert_knob("tr-fake/apps/u1/services/memory.max", "16777216");
	assert_knob("tr-fake/apps/u1/services/memory.low", "8388608");
	assert_knob("tr-fake/apps/u1/services/memory.swap.max", "0");
	assert_knob("tr-fake/apps/u1/services/cpu.max", "20000 100000");
	assert_knob("tr-fake/apps/u1/services/cpu.weight", "20");
	assert_knob("tr-fake/apps/u1/services/pids.max", "64");
	assert_knob("tr-fake/apps/u1/services/io.max", "7:3 rbps=max wbps=1000000");
	/* controllers delegated down the tree: root, R, apps, u1 */
	{
		_cleanup_free_ char *sc = knob("cgroup.subtree_control"), *sc2 = knob("tr-fake/apps/u1/cgroup.subtree_control");
		assert_non_null(strstr(sc, "memory"));
		assert_non_null(strstr(sc, "pids"));
		assert_non_null(strstr(sc2, "cpu"));
		assert_null(strstr(sc2, "hugetlb"));
	}
	/* the sys group gets no limits */
	{
		_cleanup_free_ char *m = knob("tr-fake/apps/u1/sys/memory.max");
		assert_null(m);
	}
	assert_true(cg_exists(cg, "apps/u1/services"));
	assert_int_equal(cg_attach(cg, "apps/u1/services", 4242, &err), 0);
	assert_knob("tr-fake/apps/u1/services/cgroup.procs", "4242");
	cg_close(cg);
}

static void test_oom(void **state)
{
	struct cg *cg = NULL;
	struct error err = ERROR_INIT;
	uint64_t kills = 99;
	int fd = -1;
	_cleanup_free_ char *ev = strdup_printf("%s/tr-fake/apps/u1/services/memory.events", tmpl);
	struct pollfd p;

	assert_int_equal(cg_open(tmpl, "tr-fake", CG_OPEN_FAKE, &cg, &err), 0);
	assert_int_equal(cg_create(cg, "apps/u1/services", NULL, &err), 0);
	assert_int_equal(cg_oom_check(cg, "apps/u1/services", &kills), 0);
	assert_int_equal(kills, 0);
	assert_int_equal(cg_oom_fd(cg, "apps/u1/services", &fd, &err), 0);
	p = (struct pollfd){ fd, POLLIN, 0 };
	assert_int_equal(poll(&p, 1, 0), 0);
	/* the kernel rewrites memory.events in place: modify, not replace */
	assert_int_equal(write_string_file(ev, "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\n"), 0);
	assert_int_equal(poll(&p, 1, 1000), 1);
	assert_int_equal(cg_oom_check(cg, "apps/u1/services", &kills), 0);
	assert_int_equal(kills, 2);
	close(fd);
	cg_close(cg);
}

/* cg_stats reads the v2 files: memory, cpu.stat, io.stat summed over devices, memory.events. */
static void test_stats(void **state)
{
	struct cg *cg = NULL;
	struct error err = ERROR_INIT;
	struct cg_stats st;
	const char *d = "tr-fake/apps/u2/services";
	struct { const char *knob, *text; } files[] = {
		{ "memory.current", "1234567\n" },
		{ "memory.max", "max\n" },
		{ "cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\nnr_periods 40\n"
			      "nr_throttled 7\nthrottled_usec 350000\n" },
		{ "io.stat", "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
			     "7:3 rbytes=100 wbytes=1 rios=1 wios=1 dbytes=0 dios=0\n" },
		{ "memory.events", "low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\n" },
	};

	assert_int_equal(cg_open(tmpl, "tr-fake", CG_OPEN_FAKE, &cg, &err), 0);
	assert_int_equal(cg_stats(cg, "apps/u2/services", &st), -ENOENT);
	assert_int_equal(cg_create(cg, "apps/u2/services", NULL, &err), 0);
	for (size_t i = 0; i < ELEMENTSOF(files); i++) {
		_cleanup_free_ char *p = strdup_printf("%s/%s/%s", tmpl, d, files[i].knob);
		assert_int_equal(write_file_atomic(p, files[i].text, strlen(files[i].text), 0644), 0);
	}
	assert_int_equal(cg_stats(cg, "apps/u2/services", &st), 0);
	assert_true(st.found);
	assert_int_equal(st.memory_bytes, 1234567);
	assert_true(st.memory_limit == UINT64_MAX);
	assert_int_equal(st.cpu_usec, 2500000);
	assert_int_equal(st.cpu_periods, 40);
	assert_int_equal(st.cpu_throttled, 7);
	assert_int_equal(st.cpu_throttled_usec, 350000);
	assert_int_equal(st.io_read_bytes, 4196);
	assert_int_equal(st.io_write_bytes, 8193);
	assert_int_equal(st.oom_kills, 1);
	{
		_cleanup_free_ char *p = strdup_printf("%s/%s/memory.max", tmpl, d);
		assert_int_equal(write_string_file(p, "104857600\n"), 0);
	}
	assert_int_equal(cg_stats(cg, "apps/u2/services", &st), 0);
	assert_int_equal(st.memory_limit, 104857600);
	assert_int_equal(cg_stats(cg, "apps/../u2", &st), -EINVAL);
	{
		/* R removed and made again (cell down, up) under the same cg: the kept fd of R is renewed */
		_cleanup_free_ char *r = strdup_printf("%s/tr-fake", tmpl), *p = strdup_printf("%s/%s/memory.current", tmpl, d);
		assert_int_equal(rm_rf(r), 0);
		assert_int_equal(cg_create(cg, "apps/u2/services", NULL, &err), 0);
		assert_int_equal(write_file_atomic(p, "42\n", 3, 0644), 0);
		assert_int_equal(cg_stats(cg, "apps/u2/services", &st), 0);
		assert_int_equal(st.memory_bytes, 42);
		assert_true(st.memory_limit == UINT64_MAX);
		assert_int_equal(rm_rf(r), 0);
		assert_int_equal(cg_stats(cg, "apps/u2/services", &st), -ENOENT);
	}
	cg_close(cg);
}

static void test_destroy(void **state)
{
	struct cg *cg = NULL;
	struct error err = ERROR_INIT;

	assert_int_equal(cg_open(tmpl, "tr-fake", CG_OPEN_FAKE, &cg, &err), 0);
	assert_int_equal(cg_create(cg, "apps/u2/services", NULL, &err), 0);
	assert_int_equal(cg_destroy(cg, "apps/u2", &err), 0);
	assert_false(cg_exists(cg, "apps/u2/services"));
	assert_false(cg_exists(cg, "apps/u2"));
	assert_true(cg_exists(cg, "apps"));
	assert_int_equal(cg_destroy(cg, "apps/u2", &err), 0); /* idempotent */
	assert_int_not_equal(cg_destroy(cg, "../etc", &err), 0);
	error_clear(&err);
	cg_close(cg);
}

/* The real cgroup2 mount (hybrid hosts: /sys/fs/cgroup/unified, no resource
 * controllers): create, attach, stats, kill and remove through the v2 backend. */
static void test_real_unified(void **state)
{
	struct cg *cg = NULL;
	struct error err = ERROR_INIT;
	char root[64];
	pid_t pid;
	int status;

	cg = cgt_open_unified("treadle-ut-v2", root);
	if (!cg)
		skip();
	assert_int_equal(cg_create(cg, "apps/u/services", NULL, &err), 0);
	assert_int_equal(cg_create(cg, "apps/u/sys", NULL, &err), 0);
	assert_true(cg_exists(cg, "apps/u/services"));
	pid = fork();
	if (pid == 0) {
		struct error e2 = ERROR_INIT;
		if (cg_attach(cg, "apps/u/services", 0, &e2) < 0)
			_exit(3);
		pause();
		_exit(0);
	}
	cgt_wait_procs(cg, "apps/u/services", 1);
	assert_int_equal(cgt_count_procs(cg, "apps/u/services"), 1);
	assert_int_equal(cg_destroy(cg, "", &err), 0); /* cgroup.kill, then rmdir bottom-up */
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFSIGNALED(status));
	assert_false(cg_exists(cg, "apps"));
	cg_close(cg);
}

/* ---- devices: the BPF program.  A tiny interpreter for the instructions the
 * generator uses runs it on (type, access, major, minor) requests. */
static int bpf_run(const struct bpf_insn *p, size_t n, int type, unsigned access, unsigned maj, unsigned min)
{
	uint32_t ctx[3] = { access << 16 | (unsigned)type, maj, min };
	uint64_t r[11] = { 0 };
	size_t pc = 0;

	for (int steps = 0; pc < n && steps < 10000; steps++) {
		const struct bpf_insn *i = &p[pc++];
		switch (i->code) {
		case BPF_LDX | BPF_W | BPF_MEM:
			assert_int_equal(i->src_reg, BPF_REG_1);
			assert_true(i->off >= 0 && i->off <= 8 && i->off % 4 == 0);
			r[i->dst_reg] = ctx[i->off / 4];
			break;
		case BPF_ALU | BPF_AND | BPF_K: r[i->dst_reg] = (uint32_t)(r[i->dst_reg] & (uint32_t)i->imm); break;
		case BPF_ALU | BPF_RSH | BPF_K: r[i->dst_reg] = (uint32_t)r[i->dst_reg] >> i->imm; break;
		case BPF_ALU | BPF_MOV | BPF_X: r[i->dst_reg] = (uint32_t)r[i->src_reg]; break;
		case BPF_ALU64 | BPF_MOV | BPF_K: r[i->dst_reg] = (uint64_t)(int64_t)i->imm; break;
		case BPF_JMP | BPF_JNE | BPF_K:
			if (r[i->dst_reg] != (uint64_t)(int64_t)i->imm)
				pc += (size_t)(ptrdiff_t)i->off;
			break;
		case BPF_JMP | BPF_EXIT: return (int)r[0];
		default: fail_msg("unexpected opcode 0x%x at %zu", i->code, pc - 1);
		}
	}
	fail_msg("ran off the program");
	return -1;
}

#define C BPF_DEVCG_DEV_CHAR
#define B BPF_DEVCG_DEV_BLOCK
#define RD BPF_DEVCG_ACC_READ
#define WR BPF_DEVCG_ACC_WRITE
#define MK BPF_DEVCG_ACC_MKNOD

static void test_devices_program(void **state)
{
	_cleanup_free_ struct bpf_insn *p = NULL;
	size_t n = 0;

	assert_int_equal(cg_bpf_devices_program(cg_devices_container, cg_devices_container_n, &p, &n), 0);
	/* the standard nodes, read and write */
	assert_int_equal(bpf_run(p, n, C, RD | WR, 1, 3), 1);  /* null */
	assert_int_equal(bpf_run(p, n, C, RD, 1, 9), 1);       /* urandom */
	assert_int_equal(bpf_run(p, n, C, WR, 5, 0), 1);       /* tty */
	assert_int_equal(bpf_run(p, n, C, RD | WR, 5, 2), 1);  /* ptmx */
	assert_int_equal(bpf_run(p, n, C, RD | WR, 136, 7), 1); /* a pty */
	/* never mknod, never anything else */
	assert_int_equal(bpf_run(p, n, C, MK, 1, 3), 0);
	assert_int_equal(bpf_run(p, n, C, RD | MK, 136, 0), 0);
	assert_int_equal(bpf_run(p, n, C, RD, 1, 11), 0);      /* kmsg */
	assert_int_equal(bpf_run(p, n, C, RD | WR, 10, 237), 0); /* loop-control */
	assert_int_equal(bpf_run(p, n, C, RD, 1, 1), 0);       /* mem */
	assert_int_equal(bpf_run(p, n, C, RD, 5, 1), 0);       /* console */
	assert_int_equal(bpf_run(p, n, B, RD | WR, 1, 3), 0);  /* a block device with null's numbers */
	assert_int_equal(bpf_run(p, n, B, RD, 7, 0), 0);       /* loop0 */
	assert_int_equal(bpf_run(p, n, C, RD, 4, 0), 0);       /* tty0 */
	free(p), p = NULL;

	/* wildcards: 'a' type, any major, all access; an empty list denies all */
	static const struct cg_device wild[] = { { 'b', 7, -1, CG_DEV_READ }, { 'a', -1, 42, CG_DEV_MKNOD | CG_DEV_READ | CG_DEV_WRITE } };
	assert_int_equal(cg_bpf_devices_program(wild, ELEMENTSOF(wild), &p, &n), 0);
	assert_int_equal(bpf_run(p, n, B, RD, 7, 99), 1);
	assert_int_equal(bpf_run(p, n, B, WR, 7, 99), 0);
	assert_int_equal(bpf_run(p, n, C, RD, 7, 99), 0);
	assert_int_equal(bpf_run(p, n, C, RD | WR | MK, 3, 42), 1);
	assert_int_equal(bpf_run(p, n, B, MK, 250, 42), 1);
	assert_int_equal(bpf_run(p, n, B, MK, 250, 43), 0);
	free(p), p = NULL;
	assert_int_equal(cg_bpf_devices_program(NULL, 0, &p, &n), 0);
	assert_int_equal(bpf_run(p, n, C, RD, 1, 3), 0);
	free(p), p = NULL;
	static const struct cg_device bad[] = { { 'x', 1, 3, CG_DEV_READ } };
	assert_int_equal(cg_bpf_devices_program(bad, 1, &p, &n), -EINVAL);
}

/* The kernel's verifier accepts the program (root; no cgroup2 needed). */
static void test_devices_program_loads(void **state)
{
	_cleanup_free_ struct bpf_insn *p = NULL;
	union bpf_attr a;
	char log[8192] = "";
	size_t n = 0;
	long fd;

	if (geteuid() != 0)
		skip();
	assert_int_equal(cg_bpf_devices_program(cg_devices_container, cg_devices_container_n, &p, &n), 0);
	memset(&a, 0, sizeof(a));
	a.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
	a.insns = (uint64_t)(uintptr_t)p;
	a.insn_cnt = (uint32_t)n;
	a.license = (uint64_t)(uintptr_t) "GPL";
	a.log_buf = (uint64_t)(uintptr_t)log;
	a.log_size = sizeof(log);
	a.log_level = 1;
	fd = syscall(SYS_bpf, BPF_PROG_LOAD, &a, sizeof(a));
	if (fd < 0 && errno == EPERM)
		skip();
	if (fd < 0)
		fail_msg("BPF_PROG_LOAD: %s\n%s", strerror(errno), log);
	close((int)fd);
}

/* Fake tree: the list is recorded where a v1 host would keep it. */
static void test_devices_fake(void **state)
{
	struct cg *cg = NULL;
	struct error err = ERROR_INIT;
	_cleanup_free_ char *p = NULL, *t = NULL;

	assert_int_equal(cg_open(tmpl, "r", CG_OPEN_FAKE, &cg, &err), 0);
	assert_int_equal(cg_create(cg, "apps/x/services", NULL, &err), 0);
	assert_int_equal(cg_set_devices(cg, "apps/x/services", cg_devices_container, cg_devices_container_n, &err), 0);
	p = strdup_printf("%s/r/apps/x/services/treadle.devices", tmpl);
	assert_int_equal(read_file(p, &t, NULL), 0);
	assert_non_null(strstr(t, "c 1:3 rw\n"));
	assert_non_null(strstr(t, "c 136:* rw\n"));
	assert_null(strstr(t, "m"));
	assert_int_equal(cg_destroy(cg, "", &err), 0);
	cg_close(cg);
}

static int attached_count(const char *dir)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	uint32_t ids[16];
	union bpf_attr a;

	memset(&a, 0, sizeof(a));
	a.query.target_fd = (uint32_t)fd;
	a.query.attach_type = BPF_CGROUP_DEVICE;
	a.query.prog_ids = (uint64_t)(uintptr_t)ids;
	a.query.prog_cnt = 16;
	if (fd < 0 || syscall(SYS_bpf, BPF_PROG_QUERY, &a, sizeof(a)) < 0)
		return -1;
	return (int)a.query.prog_cnt;
}

/* The real thing on this host's cgroup2 mount: device programs run for the
 * tasks of a cgroup2 group even on a hybrid host (the BPF hook is checked
 * before the v1 devices controller). */
static void test_real_unified_devices(void **state)
{
	static const struct cg_device only_null[] = { { 'c', 1, 3, CG_DEV_READ | CG_DEV_WRITE } };
	struct cg *cg = NULL;
	struct error err = ERROR_INIT;
	char root[64];
	_cleanup_free_ char *dir = NULL;

	cg = cgt_open_unified("treadle-ut-v2d", root);
	if (!cg)
		skip();
	dir = strdup_printf("/sys/fs/cgroup/unified/%s/apps/u/services", root);
	assert_int_equal(cg_create(cg, "apps/u/services", NULL, &err), 0);
	assert_int_equal(cg_set_devices(cg, "apps/u/services", cg_devices_container, cg_devices_container_n, &err), 0);
	assert_int_equal(attached_count(dir), 1);
	assert_int_equal(cgt_devices_verdict(cg, "apps/u/services"), 4); /* zero is allowed here */
	/* replaced, not added to */
	assert_int_equal(cg_set_devices(cg, "apps/u/services", only_null, 1, &err), 0);
	assert_int_equal(attached_count(dir), 1);
	assert_int_equal(cgt_devices_verdict(cg, "apps/u/services"), 0);
	/* lifted */
	assert_int_equal(cg_set_devices(cg, "apps/u/services", NULL, 0, &err), 0);
	assert_int_equal(attached_count(dir), 0);
	assert_int_equal(cgt_devices_verdict(cg, "apps/u/services"), 2 | 4 | 8);
	assert_int_equal(cg_destroy(cg, "", &err), 0);
	cg_close(cg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detect_and_limits),
		cmocka_unit_test(test_oom),
		cmocka_unit_test(test_stats),
		cmocka_unit_test(test_destroy),
		cmocka_unit_test(test_real_unified),
		cmocka_unit_test(test_devices_program),
		cmocka_unit_test(test_devices_program_loads),
		cmocka_unit_test(test_devices_fake),
		cmocka_unit_test(test_real_unified_devices),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
