/* sched-reboot.c: Treadmill's reboot schedule (Partition.tick/add/remove,
 * RebootBucket, reboot_dates): which day each server of a partition reboots,
 * which gives servers their valid_until (leases must end before it). */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../basic/util.h"
#include "sched-internal.h"

static const char *const wdays[7] = { "mon", "tue", "wed", "thu", "fri", "sat", "sun" };

/* utils.reboot_schedule: "sat,sun/10:30:00" -> {5: (23,59,59), 6: (10,30,0)} */
static int parse_schedule(const char *s, int hms[7][3])
{
	bool any = false;

	for (int d = 0; d < 7; d++)
		hms[d][0] = -1;
	if (!s || !*s) {
		for (int d = 0; d < 7; d++) {
			hms[d][0] = 23;
			hms[d][1] = 59;
			hms[d][2] = 59;
		}
		return 0;
	}
	while (*s) {
		size_t len = strcspn(s, ",");
		char item[32];
		char *slash;
		int d;

		if (len == 0 || len >= sizeof(item))
			return -EINVAL;
		memcpy(item, s, len);
		item[len] = 0;
		slash = strchr(item, '/');
		if (slash)
			*slash = 0;
		for (d = 0; d < 7; d++)
			if (strcasecmp(item, wdays[d]) == 0)
				break;
		if (d == 7)
			return -EINVAL;
		hms[d][0] = 23;
		hms[d][1] = 59;
		hms[d][2] = 59;
		if (slash) {
			int h, m, sec;
			char tail;

			if (sscanf(slash + 1, "%d:%d:%d%c", &h, &m, &sec, &tail) != 3 || h < 0 || h > 23 || m < 0 ||
			    m > 59 || sec < 0 || sec > 59)
				return -EINVAL;
			hms[d][0] = h;
			hms[d][1] = m;
			hms[d][2] = sec;
		}
		any = true;
		s += len;
		if (*s == ',')
			s++;
	}
	return any ? 0 : -EINVAL;
}

/* Advance the date generator: the next reboot time from r->y/m/d on. */
static double next_date(struct sched_reboot *r)
{
	for (int guard = 0; guard < 8; guard++) {
		struct tm tm = { 0 };
		int wd;

		tm.tm_year = r->y - 1900;
		tm.tm_mon = r->m - 1;
		tm.tm_mday = r->d;
		tm.tm_hour = 12;
		tm.tm_isdst = -1;
		(void)mktime(&tm); /* normalises the date and gives the weekday */
		wd = (tm.tm_wday + 6) % 7; /* Monday = 0 like date.weekday() */
		r->y = tm.tm_year + 1900;
		r->m = tm.tm_mon + 1;
		r->d = tm.tm_mday + 1; /* next call looks at the next day */
		if (r->hms[wd][0] >= 0) {
			struct tm t = { 0 };

			t.tm_year = tm.tm_year;
			t.tm_mon = tm.tm_mon;
			t.tm_mday = tm.tm_mday;
			t.tm_hour = r->hms[wd][0];
			t.tm_min = r->hms[wd][1];
			t.tm_sec = r->hms[wd][2];
			t.tm_isdst = -1;
			return (double)mktime(&t);
		}
	}
	return NAN;
}

/* RebootBucket.cost */
static double sched_reboot_cost(double ts, size_t nservers, double up_since)
{
	if (ts > up_since + SCHED_SERVER_UPTIME)
		return INFINITY;
	if (ts < up_since + SCHED_MIN_SERVER_UPTIME)
		return INFINITY;
	return (double)nservers;
}

void sched_reboot_free(struct sched_reboot *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++)
		free(r->b[i].servers);
	free(r->b);
	free(r);
}

static int tick(struct sched_reboot *r, double now)
{
	while (r->last <= now + SCHED_SERVER_UPTIME) {
		double ts = next_date(r);

		if (isnan(ts))
			return -EINVAL;
		if (r->n == r->cap) {
			size_t nc = r->cap ? r->cap * 2 : 32;
			struct sched_reboot_bucket *nb = realloc(r->b, nc * sizeof(*nb));

			if (!nb)
				return -ENOMEM;
			r->b = nb;
			r->cap = nc;
		}
		r->b[r->n++] = (struct sched_reboot_bucket){ .ts = ts };
		r->last = ts;
	}
	while (r->n > 0 && r->b[0].ts < now) {
		free(r->b[0].servers);
		memmove(r->b, r->b + 1, (r->n - 1) * sizeof(*r->b));
		r->n--;
	}
	return 0;
}

int sched_partition_set_reboot_schedule(struct sched_cell *c, int p, const char *schedule, double now)
{
	struct sched_reboot *r;
	struct tm tm;
	time_t t = (time_t)now;

	if (p < 0 || p >= c->nparts)
		return -EINVAL;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	if (parse_schedule(schedule, r->hms) < 0 || !localtime_r(&t, &tm)) {
		free(r);
		return -EINVAL;
	}
	r->y = tm.tm_year + 1900;
	r->m = tm.tm_mon + 1;
	r->d = tm.tm_mday;
	r->last = now;
	if (tick(r, now) < 0) {
		sched_reboot_free(r);
		return -ENOMEM;
	}
	sched_reboot_free(c->parts[p].reboot);
	c->parts[p].reboot = r;
	return 0;
}

int sched_partition_tick(struct sched_cell *c, int p, double now)
{
	if (p < 0 || p >= c->nparts)
		return -EINVAL;
	if (!c->parts[p].reboot)
		return sched_partition_set_reboot_schedule(c, p, NULL, now);
	return tick(c->parts[p].reboot, now);
}

static void bucket_remove(struct sched_reboot_bucket *b, int server)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->servers[i] == server) {
			b->servers[i] = b->servers[--b->n];
			return;
		}
}

int sched_partition_add_server(struct sched_cell *c, int p, int server, double timestamp)
{
	struct sched_reboot *r;
	struct sched_reboot_bucket *b = NULL;
	struct sched_node *s;

	if (p < 0 || p >= c->nparts || server < 0 || (size_t)server >= c->nnodes || !c->nodes[server].server)
		return -EINVAL;
	r = c->parts[p].reboot;
	if (!r || r->n == 0)
		return -ENOENT;
	s = &c->nodes[server];
	if (timestamp > 0)
		for (size_t i = 0; i < r->n; i++)
			if (r->b[i].ts == timestamp) {
				b = &r->b[i];
				break;
			}
	if (r->b[0].ts > s->up_since + SCHED_SERVER_UPTIME)
		b = &r->b[0];
	if (!b) {
		/* min(reversed(buckets), key=cost): ties go to the later bucket */
		double best = 0;

		for (size_t i = r->n; i-- > 0;) {
			double cost = sched_reboot_cost(r->b[i].ts, r->b[i].n, s->up_since);

			if (!b || cost < best) {
				b = &r->b[i];
				best = cost;
			}
		}
	}
	bucket_remove(b, server);
	if (b->n == b->cap) {
		size_t nc = b->cap ? b->cap * 2 : 8;
		int *ns = realloc(b->servers, nc * sizeof(int));

		if (!ns)
			return -ENOMEM;
		b->servers = ns;
		b->cap = nc;
	}
	b->servers[b->n++] = server;
	s->valid_until = b->ts;
	return 0;
}

