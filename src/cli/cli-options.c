/* cli-options.c: option tables -> getopt_long and --help; the cell a command uses (--cell). */
#include <assert.h>
#include <getopt.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "../basic/fileio.h"
#include "../basic/util.h"
#include "cli.h"

#define MAX_OPTIONS 48 /* per section; the build of a longer table fails its first run (assert) */

static const struct cli_option cell_options_common[] = {
	{ "cell", CLI_OPT_CELL, "NAME", "the cell to use (default $TREADLE_CELL or $TREADMILL_CELL)" },
	CLI_OPTIONS_END,
};

static bool has_cell(const struct cli_option *o)
{
	for (; o->name; o++)
		if (strcmp(o->name, "cell") == 0)
			return true;
	return false;
}

static const struct cli_option *skip_heading(const struct cli_option *o)
{
	return !o->name && o->help ? o + 1 : o;
}

/* The getopt_long arguments of one section (static storage, rebuilt on each call). */
static const struct option *build(const struct cli_option *sec, bool stop_at_arg, const char **ret_short)
{
	static struct option longopts[MAX_OPTIONS + 2];
	static char shortopts[2 * MAX_OPTIONS + 2];
	size_t n = 0, k = 0;

	sec = skip_heading(sec);
	if (stop_at_arg)
		shortopts[k++] = '+';
	for (const struct cli_option *o = sec; o->name; o++) {
		assert(n < MAX_OPTIONS);
		longopts[n++] = (struct option){ o->name, o->arg ? required_argument : no_argument, NULL, o->val };
		if (o->letter) {
			shortopts[k++] = (char)o->val;
			if (o->arg)
				shortopts[k++] = ':';
		}
	}
	if (!has_cell(sec))
		longopts[n++] = (struct option){ cell_options_common[0].name, required_argument, NULL, cell_options_common[0].val };
	longopts[n] = (struct option){ 0 };
	shortopts[k] = 0;
	*ret_short = shortopts;
	return longopts;
}

int cli_getopt(int argc, char **argv, const struct cli_option *section, bool stop_at_arg)
{
	const struct option *lo;
	const char *so;
	int c;

	for (;;) {
		lo = build(section, stop_at_arg, &so);
		c = getopt_long(argc, argv, so, lo, NULL);
		if (c != CLI_OPT_CELL || has_cell(skip_heading(section)))
			return c;
		struct error err = ERROR_INIT;

		if (cli_cell_select(optarg, &err) < 0)
			exit(error_report(&err));
	}
}

const struct cli_option *cli_section(const struct cli_option *tab, const char *heading)
{
	for (const struct cli_option *o = tab; o->name || o->help; o++)
		if (!o->name && strcmp(o->help, heading) == 0)
			return o;
	return tab;
}

static void print_section(FILE *f, const struct cli_option *o)
{
	for (; o->name; o++) {
		_cleanup_free_ char *left = NULL;

		if (o->letter)
			left = strdup_printf("-%c, --%s%s%s", o->val, o->name, o->arg ? " " : "", o->arg ? o->arg : "");
		else
			left = strdup_printf("    --%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
		fprintf(f, "  %-28s %s\n", left ? left : o->name, o->help);
	}
}

void cli_options_print(FILE *f, const struct cli_option *tab)
{
	const struct cli_option *o = tab;
	bool cell = false;

	if (o->name)
		fprintf(f, "options:\n");
	while (o->name || o->help) {
		if (!o->name) {
			fprintf(f, "options of %s:\n", o->help);
			o++;
		}
		print_section(f, o);
		cell = cell || !has_cell(o);
		while (o->name)
			o++;
	}
	if (cell)
		print_section(f, cell_options_common);
}

void cli_options_dump(FILE *f, const struct cli_option *tab)
{
	const struct cli_option *o = tab;

	while (o->name || o->help) {
		const char *so;
		const struct option *lo = build(o, false, &so);

		if (!o->name)
			fprintf(f, "[%s]\n", o->help);
		for (; lo->name; lo++)
			fprintf(f, "--%s%s\n", lo->name, lo->has_arg == required_argument ? "=ARG" : "");
		for (; *so; so++)
			if (*so != ':' && *so != '+')
				fprintf(f, "-%c%s\n", *so, so[1] == ':' ? "=ARG" : "");
		o = skip_heading(o);
		while (o->name)
			o++;
	}
}

/* One "KEY=VALUE" line of a cell file: VALUE may be quoted with ' or ". */
static int env_line(const char *file, unsigned lineno, char *line, char **root, char **store, struct error *err)
{
	char *eq, *v, **dst;
	size_t n;

	line += strspn(line, " \t");
	if (!*line || *line == '#')
		return 0;
	eq = strchr(line, '=');
	if (!eq)
		return error_set(err, ERR_PERM, 0, "%s:%u: expected KEY=VALUE", file, lineno);
	*eq = 0;
	v = eq + 1;
	n = strlen(v);
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r'))
		v[--n] = 0;
	if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
		v[n - 1] = 0;
		v++;
	}
	if (strcmp(line, "TREADLE_ROOT") == 0)
		dst = root;
	else if (strcmp(line, "TREADLE_STORE") == 0)
		dst = store;
	else
		return 0; /* the file may hold other settings of the cell */
	free(*dst);
	*dst = strdup(v);
	return *dst ? 0 : error_sys(err, ENOMEM, "cell");
}

const char *cli_cell_name;

int cli_cell_select(const char *name, struct error *err)
{
	const char *dir = getenv("TREADLE_CONF_DIR");
	_cleanup_free_ char *file = NULL, *text = NULL, *root = NULL, *store = NULL;
	struct stat st;
	unsigned lineno = 0;
	char *line, *next;
	int r;

	if (!*name || strchr(name, '/') || name[0] == '.')
		return error_set(err, ERR_PERM, 0, "cell '%s': not a cell name", name);
	file = strdup_printf("%s/cells/%s.env", dir && *dir ? dir : CLI_CONF_DIR, name);
	if (!file)
		return error_sys(err, ENOMEM, "cell");
	r = read_file(file, &text, NULL);
	if (r < 0 && r != -ENOENT)
		return error_set(err, ERR_PERM, -r, "cell %s: %s: %s", name, file, strerror(-r));
	for (line = text; line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		lineno++;
		if (env_line(file, lineno, line, &root, &store, err) < 0)
			return -EINVAL;
	}
	if (!text) {
		root = strdup_printf("%s/%s", CLI_CELLS_ROOT, name);
		if (!root)
			return error_sys(err, ENOMEM, "cell");
		if (stat(root, &st) < 0)
			return error_set(err, ERR_PERM, 0, "cell %s: unknown (no %s, no %s)", name, file, root);
	} else if (!root && !store)
		return error_set(err, ERR_PERM, 0, "cell %s: %s sets neither TREADLE_ROOT nor TREADLE_STORE", name,
				 file);
	if (root ? setenv("TREADLE_ROOT", root, 1) < 0 : unsetenv("TREADLE_ROOT") < 0)
		return error_sys(err, errno, "cell");
	if (store ? setenv("TREADLE_STORE", store, 1) < 0 : unsetenv("TREADLE_STORE") < 0)
		return error_sys(err, errno, "cell");
	cli_cell_name = name;
	return 0;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "treadle: %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " (see 'treadle help %s')\n", cmd);
	return EXIT_USAGE;
}
