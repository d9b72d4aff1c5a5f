# Static, stripped release binary of baton (musl), checked with file(1) and ldd(1).
TARGET ?= x86_64-unknown-linux-musl
BIN := target/$(TARGET)/release/baton

.PHONY: static check-static
static:
	rustup target list --installed 2>/dev/null | grep -qx $(TARGET) || rustup target add $(TARGET)
	cargo build --release --target $(TARGET) --bin baton
	$(MAKE) --no-print-directory check-static

check-static:
	@file $(BIN) | grep -Eq 'static(-pie)? linked|statically linked' || { file $(BIN); echo "error: $(BIN) is not statically linked" >&2; exit 1; }
	@file $(BIN) | grep -q ', stripped' || { echo "error: $(BIN) is not stripped (build it with make static)" >&2; exit 1; }
	@! ldd $(BIN) 2>/dev/null | grep -q '=>' || { echo "error: $(BIN) has dynamic dependencies" >&2; exit 1; }
	@echo "$(BIN): static, $$(stat -c %s $(BIN)) bytes"
