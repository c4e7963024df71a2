//! The C allocator's arenas, capped at two for the process.
//!
//! glibc's malloc gives a thread that meets a locked arena one of its own,
//! up to eight per core, and every arena keeps the memory freed into it
//! resident: the holes fetches leave between cached bodies, and up to its
//! trim threshold (128 KiB) at its top. The extension's two workers and its
//! main thread otherwise hold three. With 1,000 secrets of 4 KiB cached, a
//! cap of two is about 190 KiB less RSS (the bench's memory run, four runs
//! each: private 6,360 – 6,532 KiB against 6,568 – 6,652 KiB; issue 14).
//! One arena saves 330 KiB but puts both workers on one lock for every
//! allocation their thread caches miss, on the hot path; with two, one
//! worker shares with the main thread, which mostly waits for Lambda's
//! next event.

/// Cap the allocator's arenas at two. Call before any thread starts: an
/// arena already made stays.
pub fn limit_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets a tunable of glibc's allocator; it takes
    // the allocator's own lock and is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}
