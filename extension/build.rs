//! Links the `sidekey` binary's hot code first, when the layer build asks
//! (`SIDEKEY_HOT_TEXT`, the path of `hot-text.ld`).
//!
//! The kernel maps a file-backed binary 64 KiB around every page a process
//! touches, so the extension's resident text is set by how many 64 KiB
//! windows its executed functions are spread over, not by their size. The
//! script lists the functions a training run executed (start-up, fetches,
//! reads; `scripts/hot-text.sh` writes it) and places them together at the
//! start of `.text`; the rest follows in the linker's order. Only the order
//! changes: a stale list costs resident pages, never behaviour.
//!
//! Only the layer build (`layer/build.sh`, linked by lld through zig) sets
//! it: the script inserts `.text` after `.eh_frame`, lld's own place for
//! it, where GNU ld's default layout would make the read-only data
//! executable.
use std::env;

fn main() {
    println!("cargo:rerun-if-env-changed=SIDEKEY_HOT_TEXT");
    let Some(script) = env::var_os("SIDEKEY_HOT_TEXT") else {
        return;
    };
    let script = std::path::PathBuf::from(script);
    println!("cargo:rerun-if-changed={}", script.display());
    println!(
        "cargo:rustc-link-arg-bin=sidekey=-Wl,-T,{}",
        script.display()
    );
}
