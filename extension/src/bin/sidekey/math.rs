//! `pow`, the one C math function the extension's binary calls, defined
//! here from the `libm` crate so that the binary does not load glibc's
//! `libm.so.6` at all.
//!
//! Why: tokio's multi-thread scheduler calls `f64::powf` (its per-worker
//! poll-time average), and that compiles to a call to the C symbol `pow`.
//! Nothing else in the binary needs libm, yet loading it costs every
//! sandbox about 0.45 MiB of resident pages: the dynamic loader reads its
//! symbol tables and runs its IFUNC resolvers, and the kernel maps 64 KiB
//! around each page touched (bench/REPORT.md, issue 14). With `pow` defined
//! in the binary, the linker resolves tokio's call here and, linking with
//! `--as-needed`, drops `libm.so.6` from the binary's `DT_NEEDED`;
//! `layer/check.sh` fails if it ever comes back.
//!
//! `libm` is the Rust port of musl's libm (rust-lang/compiler-builtins):
//! the same results as a C library's `pow` for a scheduler's statistics,
//! special cases (NaN, infinities, signed zeros) included.

/// The C library's `pow(x, y)`: `x` raised to the power `y`.
///
/// Only ever called through the C symbol by code that links against it
/// (`f64::powf` in tokio); Rust code of ours calls `f64::powf`.
#[no_mangle]
pub extern "C" fn pow(x: f64, y: f64) -> f64 {
    libm::pow(x, y)
}

#[cfg(test)]
mod tests {
    use super::pow;

    #[test]
    fn pow_is_the_c_library_pow() {
        assert_eq!(pow(2.0, 10.0), 1024.0);
        assert_eq!(pow(9.0, 0.5), 3.0);
        assert_eq!(pow(0.5, 3.0), 0.125);
        // What tokio computes: a weight in (0, 1) raised to a poll count.
        let w = pow(0.9, 30.0);
        assert!((w - 0.042_391_158_275_216_2).abs() < 1e-15, "{w}");
        // C99 Annex F's special cases.
        assert_eq!(pow(f64::NAN, 0.0), 1.0);
        assert_eq!(pow(1.0, f64::NAN), 1.0);
        assert!(pow(-1.0, 0.5).is_nan());
        assert_eq!(pow(0.0, -1.0), f64::INFINITY);
        assert_eq!(pow(-0.0, -1.0), f64::NEG_INFINITY);
        assert_eq!(pow(f64::INFINITY, -2.0), 0.0);
    }
}
