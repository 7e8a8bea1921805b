/* treadle-bind.c: the bind preload of private-network containers (docs/CONTAINER.md "Bind preload").
 *
 * Built as its own shared object (build/lib/treadle-bind.so), never linked into treadle; every process of
 * a private-network container loads it through /etc/ld.so.preload.  It changes one thing: a bind() of a
 * TCP or UDP socket to port 0 on the any address (or the container's or the host's address) takes a free
 * port of the container's reserved ephemeral ports (TREADMILL_EPHEMERAL_{TCP,UDP}_PORTS in /env, else in
 * the environment), so what the app is told to listen on is reachable at host:port through the node's DNAT.
 * Every other bind() is passed through untouched.  As Treadmill's treadmill-bind: SO_REUSEADDR is cleared
 * on such a socket (two sockets must not share a reserved port), and when every reserved port is busy the
 * call fails with EADDRNOTAVAIL.  No constructor, no allocation, no state: safe in any process. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef int (*bind_fn)(int, const struct sockaddr *, socklen_t);

#define MAX_PORTS 1024

/* The value of NAME: the first line of /env/NAME (the container's envdir), else getenv. */
static bool env_value(const char *name, char *buf, size_t size)
{
	char path[128] = "/env/";
	ssize_t n;
	int fd;

	if (strlen(name) + 6 > sizeof(path))
		return false;
	strcat(path, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, size - 1);
		close(fd);
		if (n >= 0) {
			buf[n] = 0;
			buf[strcspn(buf, "\n")] = 0;
			return true;
		}
	}
	const char *v = getenv(name);
	if (!v || strlen(v) >= size)
		return false;
	strcpy(buf, v);
	return true;
}

/* The reserved ports of a protocol, "p1 p2 ..." parsed into ports[]; how many. */
static size_t reserved_ports(bool tcp, unsigned short *ports)
{
	char buf[MAX_PORTS * 6 + 1], *p, *end;
	size_t n = 0;

	if (!env_value(tcp ? "TREADMILL_EPHEMERAL_TCP_PORTS" : "TREADMILL_EPHEMERAL_UDP_PORTS", buf, sizeof(buf)))
		return 0;
	for (p = buf; *p && n < MAX_PORTS;) {
		unsigned long v = strtoul(p, &end, 10);

		if (end == p)
			break;
		if (v > 0 && v < 65536)
			ports[n++] = (unsigned short)v;
		p = end;
	}
	return n;
}

/* Is addr one of the addresses whose port 0 means "a reserved port": any, the container's, the host's? */
static bool own_address(const struct sockaddr *addr)
{
	static const char *const names[] = { "TREADMILL_CONTAINER_IP", "TREADMILL_HOST_IP" };
	char buf[64];

	if (addr->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)addr)->sin6_addr;
		if (IN6_IS_ADDR_UNSPECIFIED(a6))
			return true;
		if (!IN6_IS_ADDR_V4MAPPED(a6))
			return false;
		struct in_addr a4;
		memcpy(&a4, &a6->s6_addr[12], 4);
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			struct in_addr x;
			if (env_value(names[i], buf, sizeof(buf)) && inet_pton(AF_INET, buf, &x) == 1 &&
			    x.s_addr == a4.s_addr)
				return true;
		}
		return a4.s_addr == htonl(INADDR_ANY);
	}
	const struct in_addr *a = &((const struct sockaddr_in *)addr)->sin_addr;
	if (a->s_addr == htonl(INADDR_ANY))
		return true;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		struct in_addr x;
		if (env_value(names[i], buf, sizeof(buf)) && inet_pton(AF_INET, buf, &x) == 1 && x.s_addr == a->s_addr)
			return true;
	}
	return false;
}

__attribute__((visibility("default"))) int bind(int fd, const struct sockaddr *addr, socklen_t len)
{
	static bind_fn real_bind;
	unsigned short ports[MAX_PORTS];
	struct sockaddr_storage ss;
	int type = 0, zero = 0;
	socklen_t tl = sizeof(type);
	size_t n;

	if (!real_bind) {
		real_bind = (bind_fn)dlsym(RTLD_NEXT, "bind");
		if (!real_bind) {
			errno = ENOSYS;
			return -1;
		}
	}
	if (!addr || len > sizeof(ss) || (addr->sa_family != AF_INET && addr->sa_family != AF_INET6) ||
	    (addr->sa_family == AF_INET && len < sizeof(struct sockaddr_in)) ||
	    (addr->sa_family == AF_INET6 && len < sizeof(struct sockaddr_in6)))
		return real_bind(fd, addr, len);
	/* sin_port and sin6_port are at the same offset */
	if (((const struct sockaddr_in *)addr)->sin_port != 0 || !own_address(addr))
		return real_bind(fd, addr, len);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) < 0 || (type != SOCK_STREAM && type != SOCK_DGRAM))
		return real_bind(fd, addr, len);
	n = reserved_ports(type == SOCK_STREAM, ports);
	if (n == 0)
		return real_bind(fd, addr, len);
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &zero, sizeof(zero));
	memcpy(&ss, addr, len);
	for (size_t i = 0; i < n; i++) {
		((struct sockaddr_in *)&ss)->sin_port = htons(ports[i]);
		if (real_bind(fd, (const struct sockaddr *)&ss, len) == 0)
			return 0;
		if (errno != EADDRINUSE)
			return -1;
	}
	errno = EADDRNOTAVAIL;
	return -1;
}
