# Static, stripped release binaries of baton (musl) for x86_64 and arm64 nodes, each checked with
# file(1) and ldd(1) and against the size budget. `make static TARGET=<triple>` builds just one.
TARGETS ?= x86_64-unknown-linux-musl aarch64-unknown-linux-musl
ifdef TARGET
TARGETS := $(TARGET)
endif
# Every mode in (baton, Tekton, Argo): at most 1.25 MiB, on every architecture.
SIZE_BUDGET := 1310720

.PHONY: static check-static
static:
	@for t in $(TARGETS); do \
	  rustup target list --installed 2>/dev/null | grep -qx $$t || rustup target add $$t || exit 1; \
	  case $$t in aarch64-*) \
	    command -v aarch64-linux-gnu-gcc >/dev/null 2>&1 || { \
	      echo "make static: installing gcc-aarch64-linux-gnu (apt-get), the arm64 linker (.cargo/config.toml)"; \
	      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-aarch64-linux-gnu >/dev/null; } || exit 1 ;; \
	  esac; \
	  echo "cargo build --release --target $$t --bin baton"; \
	  cargo build --release --target $$t --bin baton || exit 1; \
	done
	$(MAKE) --no-print-directory check-static

check-static:
	@for t in $(TARGETS); do \
	  bin=target/$$t/release/baton; \
	  case $$t in aarch64-*) arch='ARM aarch64' ;; *) arch='x86-64' ;; esac; \
	  file $$bin | grep -q ", $$arch," || { file $$bin; echo "error: $$bin is not an $$arch executable" >&2; exit 1; }; \
	  file $$bin | grep -Eq 'static(-pie)? linked|statically linked' || { file $$bin; echo "error: $$bin is not statically linked" >&2; exit 1; }; \
	  file $$bin | grep -q ', stripped' || { echo "error: $$bin is not stripped (build it with make static)" >&2; exit 1; }; \
	  ! ldd $$bin 2>/dev/null | grep -q '=>' || { echo "error: $$bin has dynamic dependencies" >&2; exit 1; }; \
	  size=$$(stat -c %s $$bin); \
	  [ $$size -le $(SIZE_BUDGET) ] || { echo "error: $$bin is $$size bytes, over the budget of $(SIZE_BUDGET) bytes" >&2; exit 1; }; \
	  echo "$$bin: static, $$size bytes"; \
	done
