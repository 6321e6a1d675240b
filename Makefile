# SPDX-License-Identifier: GPL-2.0-only
#
# dm-remap top-level Makefile.  The kernel part is described in Kbuild.
#
#   make              module + userland + user-space build of common/
#   make check        install what is missing, build, unit tests, fuzz smoke,
#                     then the pytest suite inside a QEMU guest (VM=0: on this host),
#                     on Debian 12's 6.1 kernel, then its guest part on 6.12 too
#   make demo         the demonstration, in a QEMU guest
#   make bench        benchmarks (not part of check)
#   make install      module (into /lib/modules/$(KVER)/updates), tools, man pages,
#                     the boot-time unit remapctl-activate.service
#   make dkms-install the module through DKMS (rebuilt for every new kernel), tools...
#   make uninstall    removes what either put there
#   make KVER=...     build for another installed kernel (default: the running
#                     kernel if its headers are installed, else the newest that has them)

KVER    ?= $(shell k=$$(uname -r); if [ -d /lib/modules/$$k/build ]; then echo $$k; \
		   else test/vm/kver.sh; fi)
KDIR    ?= /lib/modules/$(KVER)/build
VM      ?= 1
PREFIX  ?= /usr/local
DESTDIR ?=
SBINDIR ?= $(PREFIX)/sbin
MANDIR  ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
BUILD   := build
# One version for the module (modinfo), DKMS and remapctl --version.
VERSION := $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"$$/\1/p' dkms.conf)
# What DKMS builds the module from: Kbuild, dkms.conf and these sources.
KSRC    := $(wildcard dm-remap/*.[ch] dm-remap-mgr/*.[ch] common/*.[ch])

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes -Wvla
SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer

COMMON_SRC := $(wildcard common/*.c)
COMMON_HDR := $(wildcard common/*.h)
UNIT_SRC   := $(wildcard test/unit/*.c)
# Offline metadata tools: one program each over a shared loader and writer.
TOOLS      := remap_check remap_dump remap_repair
TOOLS_SRC  := userland/mdread.c userland/mdjson.c userland/mdwrite.c
TOOLS_HDR  := $(wildcard userland/md*.h) userland/jsonstr.h

.PHONY: all module userland unit fuzz check demo bench bench-index install install-check \
	install-tools dkms-src dkms-install dkms-install-check uninstall clean lint

all: module userland unit $(BUILD)/mkpool

module:
	@test -n "$(KVER)" -a -d "$(KDIR)" || { echo "no kernel headers for '$(KVER)' (apt-get install linux-headers-amd64, or KVER=...)"; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

# --- user space -----------------------------------------------------------
$(BUILD)/common-user/%.o: common/%.c $(COMMON_HDR)
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) -Icommon -c $< -o $@

$(BUILD)/libremap-common.a: $(patsubst common/%.c,$(BUILD)/common-user/%.o,$(COMMON_SRC))
	$(AR) rcs $@ $^

userland: $(BUILD)/remapctl $(addprefix $(BUILD)/,$(TOOLS))

REMAPCTL_SRC := $(wildcard userland/remapctl.c userland/dm.c userland/blk.c \
		  userland/json.c userland/activate.c)
$(BUILD)/remapctl: $(REMAPCTL_SRC) userland/remapctl.h userland/jsonstr.h $(BUILD)/libremap-common.a $(COMMON_HDR) dkms.conf
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) -DRM_VERSION='"$(VERSION)"' -Icommon $(REMAPCTL_SRC) $(BUILD)/libremap-common.a \
		$(shell pkg-config --cflags --libs devmapper 2>/dev/null || echo -ldevmapper) -o $@

$(BUILD)/remap_%: userland/remap_%.c $(TOOLS_SRC) $(TOOLS_HDR) $(BUILD)/libremap-common.a $(COMMON_HDR)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) -Icommon -Iuserland $< $(TOOLS_SRC) \
		$(BUILD)/libremap-common.a -o $@

# Test tool: writes a pool that already holds N remaps (make check, make bench).
$(BUILD)/mkpool: test/bench/mkpool.c $(BUILD)/libremap-common.a $(COMMON_HDR)
	$(CC) -std=gnu11 $(CFLAGS) $(WARN) -Icommon $< $(BUILD)/libremap-common.a -o $@

# Unit tests of common/ and the tools' loader, built with ASan and UBSan.
unit: $(BUILD)/unit

$(BUILD)/unit: $(UNIT_SRC) $(COMMON_SRC) $(COMMON_HDR) $(TOOLS_SRC) $(TOOLS_HDR) test/unit/unit.h
	@mkdir -p $(BUILD)
	$(CC) -std=gnu11 -O1 -g $(WARN) -Wno-missing-prototypes $(SAN) -pthread -Icommon -Iuserland \
		$(UNIT_SRC) $(COMMON_SRC) $(TOOLS_SRC) -o $@

# libFuzzer targets (clang).  FUZZ_SECONDS per target; corpus under build/.
FUZZ_SECONDS ?= 60
FUZZ_SRC := $(wildcard test/fuzz/fuzz_*.c)
fuzz: $(patsubst test/fuzz/%.c,$(BUILD)/%,$(FUZZ_SRC))
	@for f in $^; do \
		c=$(BUILD)/corpus/$$(basename $$f); mkdir -p $$c; \
		if [ -x $(BUILD)/mkseeds ]; then $(BUILD)/mkseeds $$c; fi; \
		echo "fuzz: $$f for $(FUZZ_SECONDS)s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=0 $$c 2>$(BUILD)/$$(basename $$f).log || \
			{ tail -40 $(BUILD)/$$(basename $$f).log; exit 1; }; \
		grep -E '^#[0-9]+.*DONE' $(BUILD)/$$(basename $$f).log | tail -1; \
	done

$(BUILD)/fuzz_%: test/fuzz/fuzz_%.c $(COMMON_SRC) $(COMMON_HDR) $(BUILD)/mkseeds
	clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -Icommon $< $(COMMON_SRC) -o $@

# The offline tools' loader and writer on whole pool images.
$(BUILD)/fuzz_load: test/fuzz/fuzz_load.c $(COMMON_SRC) $(COMMON_HDR) $(TOOLS_SRC) $(TOOLS_HDR) $(BUILD)/mkseeds
	clang -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined -Icommon -Iuserland $< \
		$(COMMON_SRC) $(TOOLS_SRC) -o $@

$(BUILD)/mkseeds: $(wildcard test/fuzz/mkseeds.c) $(COMMON_SRC) $(COMMON_HDR)
	@mkdir -p $(BUILD)
	@if [ -f test/fuzz/mkseeds.c ]; then \
		$(CC) -std=gnu11 -O1 -g -Icommon test/fuzz/mkseeds.c $(COMMON_SRC) -o $@; \
	else printf '#!/bin/sh\n' > $@; chmod +x $@; fi

# --- tests, demo, benchmarks ---------------------------------------------
# KVER only if given: otherwise check.sh picks its kernels itself (6.1 first).
check:
	@VM=$(VM) $(if $(filter command line environment,$(origin KVER)),KVER=$(KVER)) test/check.sh

demo:
	@test/demo.sh

bench:
	@test/bench.sh

bench-index:
	@test/bench/index-bench.sh

lint:
	@test/lint.sh

# --- installation ---------------------------------------------------------
# DESTDIR stages everything (the module too) under another root: no depmod,
# no DKMS then; a package's scripts do that.

# Every version of dm-remap that DKMS has registered.
DKMS_VERSIONS = $$(dkms status -m dm-remap 2>/dev/null | \
		  sed -n 's|^dm-remap/\([^,:]*\)[,:].*|\1|p' | sort -u)
# Removes "$$k", a module file /lib/modules/<version>/..., then runs depmod
# for that kernel (not under DESTDIR).
RM_KO = rm -f "$$k" && if [ -z "$(DESTDIR)" ]; then d=$${k\#/lib/modules/}; \
	depmod -a "$${d%%/*}"; fi

install: install-check module install-tools
	$(MAKE) -C $(KDIR) M=$(CURDIR) INSTALL_MOD_DIR=updates \
		$(if $(DESTDIR),INSTALL_MOD_PATH="$(DESTDIR)") modules_install
	test -n "$(DESTDIR)" || depmod -a $(KVER)

# Two copies of the module, DKMS's and this one, would leave it to chance
# which one loads.
install-check:
	@if [ -z "$(DESTDIR)" ] && command -v dkms >/dev/null && \
	    [ -n "$(DKMS_VERSIONS)" ]; then \
		echo "dm-remap is installed through DKMS: make dkms-install, or make uninstall first"; \
		exit 1; \
	fi

install-tools: userland
	install -D -m 0755 $(BUILD)/remapctl "$(DESTDIR)$(SBINDIR)/remapctl"
	install -D -m 0644 man/remapctl.8 "$(DESTDIR)$(MANDIR)/man8/remapctl.8"
	for t in $(TOOLS); do \
		install -D -m 0755 $(BUILD)/$$t "$(DESTDIR)$(SBINDIR)/$$t" && \
		install -D -m 0644 man/$$t.8 "$(DESTDIR)$(MANDIR)/man8/$$t.8" || exit 1; \
	done
	install -d "$(DESTDIR)$(UNITDIR)"
	sed 's|@SBINDIR@|$(SBINDIR)|g' userland/remapctl-activate.service.in \
		> "$(DESTDIR)$(UNITDIR)/remapctl-activate.service"

# The module's sources where DKMS expects them: $(DESTDIR)/usr/src/dm-remap-$(VERSION).
dkms-src:
	@test -n "$(VERSION)" || { echo "no PACKAGE_VERSION in dkms.conf"; exit 1; }
	rm -rf "$(DESTDIR)/usr/src/dm-remap-$(VERSION)"
	for f in Kbuild dkms.conf $(KSRC); do \
		install -D -m 0644 $$f "$(DESTDIR)/usr/src/dm-remap-$(VERSION)/$$f" || exit 1; \
	done

# Registered with DKMS (in place of any version registered before, and of a
# module make install put there), built and installed for $(KVER); DKMS
# rebuilds it for every kernel installed from now on.
dkms-install: dkms-install-check dkms-src install-tools
	@command -v dkms >/dev/null || { echo "dkms is not installed (apt-get install dkms)"; exit 1; }
	for v in $(DKMS_VERSIONS); do dkms remove -m dm-remap -v $$v --all || exit 1; done
	for k in /lib/modules/*/updates/dm-remap.ko*; do \
		[ ! -e "$$k" ] || { $(RM_KO); } || exit 1; \
	done
	dkms add -m dm-remap -v $(VERSION)
	dkms install -m dm-remap -v $(VERSION) -k $(KVER)

# DKMS registers and builds in the host's trees: nothing to stage.
dkms-install-check:
	@if [ -n "$(DESTDIR)" ]; then \
		echo "make dkms-install works on this machine's DKMS: no DESTDIR (make dkms-src DESTDIR=... stages the sources)"; \
		exit 1; \
	fi

# Everything make install or make dkms-install put there, for every kernel.
uninstall:
	if [ -z "$(DESTDIR)" ] && command -v dkms >/dev/null; then \
		for v in $(DKMS_VERSIONS); do dkms remove -m dm-remap -v $$v --all || exit 1; done; \
	fi
	rm -rf "$(DESTDIR)"/usr/src/dm-remap-*
	for k in "$(DESTDIR)"/lib/modules/*/updates/dm-remap.ko*; do \
		[ ! -e "$$k" ] || { $(RM_KO); } || exit 1; \
	done
	if [ -z "$(DESTDIR)" ] && command -v systemctl >/dev/null; then \
		systemctl disable remapctl-activate.service 2>/dev/null || true; \
	fi
	rm -f "$(DESTDIR)$(UNITDIR)/remapctl-activate.service"
	rm -f "$(DESTDIR)$(SBINDIR)/remapctl" "$(DESTDIR)$(MANDIR)/man8/remapctl.8"
	for t in $(TOOLS); do \
		rm -f "$(DESTDIR)$(SBINDIR)/$$t" "$(DESTDIR)$(MANDIR)/man8/$$t.8"; \
	done

clean:
	-$(MAKE) -C $(KDIR) M=$(CURDIR) clean 2>/dev/null
	rm -rf $(BUILD)
