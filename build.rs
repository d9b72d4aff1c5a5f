//! Link settings of the static release binaries (musl, the release profile: panic=abort): their unwind tables are dropped
//! (build/discard-unwind.ld). A panic still prints its message and aborts; only the backtrace that
//! RUST_BACKTRACE asks for comes out empty. Debug and test builds unwind and are left as they are.

fn main() {
    println!("cargo:rerun-if-changed=build/discard-unwind.ld");
    let musl = std::env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|e| e == "musl");
    // The release profile is the one with panic = "abort" (Cargo.toml); build scripts are not told
    // the panic strategy itself (CARGO_CFG_PANIC says "unwind" there).
    let release = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    if musl && release {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg-bins=-Wl,--no-eh-frame-hdr");
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{dir}/build/discard-unwind.ld");
    }
}
