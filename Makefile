# treadle build.  `make` builds build/treadle; `make test` installs missing
# Debian packages, builds and runs every test; `make run` starts a demo cell.
# `make SANITIZE=address,undefined test` builds into build-san/ with sanitizers.
# `make FUZZ=1` builds the libFuzzer fuzzers with clang into build-fuzz/fuzz/;
# `make fuzz` runs each for FUZZ_SECONDS; `make bench-faults` is the fault bench
# (docs/TESTING.md).
# `make install [DESTDIR=D] [PREFIX=/usr/local]` installs the binary, the docs,
# the systemd unit treadle.service and an example /etc/treadle/treadle.env.
#
# run, test and bench install the packages first (deps) and only then build, in
# a recursive make: the pkg-config flags below are computed when a make starts,
# so the make that builds must start after the packages are there.

VERSION   := 0.1.0
CC        ?= cc
# PKGS_DL: headers only, not linked; loaded with dlopen() at first use (src/basic/dl.h,
# docs/ARCHITECTURE.md Decisions): every treadle exec would otherwise load them.  libarchive
# is dlopen'ed too (container/image.c) but stays linked for test-container, which writes tars:
# the linker drops it from build/treadle, which names none of its symbols.
PKGS_LINK := yaml-0.1 jansson sqlite3 libcap libseccomp libarchive zlib \
             libnl-route-3.0 libnl-3.0 libnftables libnetfilter_conntrack
PKGS_DL   := libcurl libmicrohttpd ldap krb5-gssapi kadm-client krb5
PKGS      := $(PKGS_LINK) $(PKGS_DL)
WARN      := -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes -Wshadow \
             -Wno-unused-parameter -Wno-missing-field-initializers -Wvla
CFLAGS    ?= -O2 -g
ifneq ($(FUZZ),)
# libFuzzer: libtreadle instrumented for coverage with ASan+UBSan, each fuzzer
# linked with libFuzzer's main (-fsanitize=fuzzer) instead of tests/fuzz/replay.c.
CC        := clang
BUILD     ?= build-fuzz
FUZZ_SAN  := -fsanitize=address,undefined -fno-sanitize-recover=undefined
CFLAGS    += -O1 -fsanitize=fuzzer-no-link $(FUZZ_SAN) -fno-omit-frame-pointer
LDFLAGS   += $(FUZZ_SAN)
else ifneq ($(SANITIZE),)
BUILD     ?= build-san
CFLAGS    += -O1 -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS   += -fsanitize=$(SANITIZE)
else
BUILD     ?= build
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS_LINK) 2>/dev/null)
PKG_OK     := $(shell pkg-config --exists $(PKGS) 2>/dev/null && echo yes)
ALL_CFLAGS = -std=gnu17 -D_GNU_SOURCE -DTHREADED -DTREADLE_VERSION='"$(VERSION)"' \
             -MMD -MP $(WARN) $(CFLAGS) $(PKG_CFLAGS)
LIBS      := $(PKG_LIBS) -lzookeeper_mt -lpthread -lm

LIB_SRC   := $(shell find src -name '*.c' -not -path 'src/cli/*' -not -path 'src/preload/*' | sort)
CLI_SRC   := $(wildcard src/cli/*.c)
LIB_OBJ   := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/api-ui-assets.o
UI_FILES  := $(sort $(wildcard ui/*.html ui/*.js ui/*.css))
CLI_OBJ   := $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC  := $(wildcard tests/unit/test-*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
TEST_HELPERS := $(wildcard tests/helpers/*.c)
TEST_HELPER_BIN := $(TEST_HELPERS:tests/helpers/%.c=$(BUILD)/helpers/%)
FUZZ_SRC  := $(wildcard tests/fuzz/fuzz-*.c)
FUZZ_BIN  := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

.PHONY: all deps test unit run bench clean install pkgcheck fuzzers fuzz bench-faults
all: $(BUILD)/treadle $(BUILD)/lib/treadle-bind.so
ifneq ($(FUZZ),)
.DEFAULT_GOAL := fuzzers
endif

deps:
	@./scripts/install-deps.sh

# Every compile needs the packages: say so once instead of a page of missing headers.
pkgcheck:
ifneq ($(PKG_OK),yes)
	@echo "treadle: build packages missing (pkg-config $(PKGS)): run 'make deps' as root, or 'make run'/'make test'" >&2
	@exit 1
endif

$(BUILD)/%.o: %.c | pkgcheck
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The web UI (ui/) embedded into the binary (served by `treadle api` at /).
$(BUILD)/gen/api-ui-assets.c: $(UI_FILES) scripts/embed-ui.sh
	@mkdir -p $(dir $@)
	./scripts/embed-ui.sh $@ $(UI_FILES)

$(BUILD)/gen/api-ui-assets.o: $(BUILD)/gen/api-ui-assets.c
	$(CC) -std=gnu17 $(CFLAGS) -c $< -o $@

$(BUILD)/libtreadle.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/treadle: $(CLI_OBJ) $(BUILD)/libtreadle.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libtreadle.a $(LIBS)

# The bind preload of private-network containers (src/preload/): a shared object of its own, never in
# libtreadle or the binary, built without the sanitizers (every process of a container loads it).
$(BUILD)/lib/treadle-bind.so: src/preload/treadle-bind.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu17 -D_GNU_SOURCE -O2 -g $(WARN) -fPIC -shared -o $@ $< -ldl

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libtreadle.a $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $< $(BUILD)/libtreadle.a $(LIBS) -lcmocka

$(BUILD)/helpers/%: tests/helpers/%.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu17 -O2 -Wall -Werror -static -o $@ $< 2>/dev/null || $(CC) -std=gnu17 -O2 -Wall -Werror -o $@ $<

# Fuzzers are built as corpus replayers (main in tests/fuzz/replay.c) unless FUZZ=1 (clang libFuzzer).
ifneq ($(FUZZ),)
$(BUILD)/fuzz/%: tests/fuzz/%.c $(BUILD)/libtreadle.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -fsanitize=fuzzer -o $@ $< $(BUILD)/libtreadle.a $(LIBS)
else
$(BUILD)/fuzz/%: tests/fuzz/%.c tests/fuzz/replay.c $(BUILD)/libtreadle.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes $(LDFLAGS) -o $@ $< tests/fuzz/replay.c $(BUILD)/libtreadle.a $(LIBS)
endif

fuzzers: $(FUZZ_BIN)

# Each libFuzzer fuzzer for FUZZ_SECONDS over its corpus; crashes kept in build-fuzz/crashes/.
FUZZ_SECONDS ?= 60
fuzz:
	@./scripts/install-deps.sh fuzz
	@$(MAKE) --no-print-directory FUZZ=1 -j$(shell nproc) fuzzers
	@FUZZ_SECONDS=$(FUZZ_SECONDS) BUILD=build-fuzz ./tests/fuzz/fuzz.sh $(FUZZERS)

# Fault-injection bench (SIGKILLs, ZooKeeper loss, disk full): prints figures, takes minutes.
bench-faults: deps
	@$(MAKE) --no-print-directory -j$(shell nproc) all $(TEST_HELPER_BIN)
	@BUILD=$(BUILD) ./bench/faults.sh

unit: $(UNIT_BIN)

test: deps
	@$(MAKE) --no-print-directory -j$(shell nproc) all unit $(TEST_HELPER_BIN) $(FUZZ_BIN)
	@BUILD=$(BUILD) ./tests/run.sh

run: deps
	@$(MAKE) --no-print-directory -j$(shell nproc) all
	@./scripts/demo.sh

bench: deps
	@$(MAKE) --no-print-directory -j$(shell nproc) all $(TEST_HELPER_BIN)
	@BUILD=$(BUILD) ./bench/run.sh

# Install layout (GNU names).  The unit gets the installed binary's path; the
# example settings file is installed only where none exists, never overwriting.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
LIBDIR     ?= $(PREFIX)/lib
DOCDIR     ?= $(PREFIX)/share/doc/treadle
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc

install: all
	install -D -m 0755 $(BUILD)/treadle $(DESTDIR)$(BINDIR)/treadle
	install -D -m 0644 $(BUILD)/lib/treadle-bind.so $(DESTDIR)$(LIBDIR)/treadle-bind.so
	install -d $(DESTDIR)$(DOCDIR)/docs
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/
	install -m 0644 $(wildcard docs/*.md) $(DESTDIR)$(DOCDIR)/docs/
	install -m 0644 examples/*.yml -D -t $(DESTDIR)$(DOCDIR)/examples/
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's,@BINDIR@,$(BINDIR),g' -e 's,@DOCDIR@,$(DOCDIR),g' -e 's,@SYSCONFDIR@,$(SYSCONFDIR),g' \
		dist/treadle.service.in >$(DESTDIR)$(UNITDIR)/treadle.service.tmp
	chmod 0644 $(DESTDIR)$(UNITDIR)/treadle.service.tmp
	mv -f $(DESTDIR)$(UNITDIR)/treadle.service.tmp $(DESTDIR)$(UNITDIR)/treadle.service
	install -d $(DESTDIR)$(SYSCONFDIR)/treadle
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/treadle/treadle.env ]; then \
		echo "$(DESTDIR)$(SYSCONFDIR)/treadle/treadle.env exists: kept (example in $(DOCDIR)/treadle.env)"; \
	else \
		echo "install -m 0644 dist/treadle.env $(DESTDIR)$(SYSCONFDIR)/treadle/treadle.env"; \
		install -m 0644 dist/treadle.env $(DESTDIR)$(SYSCONFDIR)/treadle/treadle.env; \
	fi
	install -m 0644 dist/treadle.env $(DESTDIR)$(DOCDIR)/treadle.env

clean:
	rm -rf build build-san build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
