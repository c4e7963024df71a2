//! The C allocator's arenas: one for the process.
//!
//! glibc's malloc gives a thread that meets a locked arena one of its own,
//! up to eight per core, and every arena keeps the memory freed into it
//! resident: the fetches' freed buffers, and up to its trim threshold
//! (128 KiB) at its top. The extension's two workers and its main thread
//! would otherwise hold three, each with its own free memory that only it
//! reuses.
//!
//! One arena puts the workers on one lock for the allocations their
//! thread caches miss. The hot path no longer makes such allocations
//! (cached bodies are shared, not copied; hyper's buffers and the
//! response's small allocations fit the thread caches): server CPU per
//! request under wrk, 8 paired rounds each, medians 9.26 against 9.28 µs at
//! 8 connections and 7.92 against 7.99 µs at 64, with one arena and with
//! two. With 1,000 secrets of 4 KiB cached it is about 130 KiB less RSS
//! (the bench's memory run, three runs each: private 5,544 – 5,612 KiB
//! against 5,684 – 5,708 KiB; issue 14). Two arenas were 190 KiB less than
//! three when each cached body was an allocation of its own.

/// Cap the allocator at one arena. Call before any thread starts: an
/// arena already made stays.
pub fn limit_arenas() {
    // SAFETY: mallopt only sets a tunable of glibc's allocator; it takes
    // the allocator's own lock and is safe to call at any time.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}
