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
//! Only with lld: the script inserts `.text` after `.eh_frame`, lld's own
//! place for it, where GNU ld's default layout would make the read-only
//! data executable. The layer build (`layer/build.sh`) links through zig,
//! whose linker is lld; any other linker fails the build here, loudly,
//! rather than producing a binary with executable read-only data.
use std::env;

fn main() {
    println!("cargo:rerun-if-env-changed=SIDEKEY_HOT_TEXT");
    let Some(script) = env::var_os("SIDEKEY_HOT_TEXT") else {
        return;
    };
    let linker = env::var("RUSTC_LINKER").unwrap_or_default();
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if !links_with_lld(&linker, &flags) {
        eprintln!(
            "error: SIDEKEY_HOT_TEXT is set, but the linker ({}) is not lld: \
             extension/hot-text.ld is only safe with lld (GNU ld would make the \
             read-only data executable). Build the layer with layer/build.sh \
             (cargo lambda, zig's lld), or unset SIDEKEY_HOT_TEXT.",
            if linker.is_empty() {
                "the default cc"
            } else {
                &linker
            }
        );
        std::process::exit(1);
    }
    let script = std::path::PathBuf::from(script);
    println!("cargo:rerun-if-changed={}", script.display());
    println!(
        "cargo:rustc-link-arg-bin=sidekey=-Wl,-T,{}",
        script.display()
    );
}

/// Whether the binary is linked by lld: zig's `cc` (cargo lambda's linker
/// wrapper names it), an lld itself, or `-fuse-ld=lld` in the flags.
fn links_with_lld(linker: &str, encoded_rustflags: &str) -> bool {
    let name = std::path::Path::new(linker)
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    name.contains("zig")
        || name.contains("lld")
        || encoded_rustflags
            .split('\u{1f}')
            .any(|f| f.contains("-fuse-ld=lld") || f.contains("linker-flavor=ld.lld"))
}
