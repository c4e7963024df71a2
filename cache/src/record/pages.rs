//! Where cached bodies live: packed side by side in shared pages, apart
//! from the allocator's general heap.
//!
//! Each value's body used to be its own allocation, made right after the
//! fetch that brought it had freed its buffers (hyper's 8 KiB read buffer,
//! the answer, the decoded value). glibc's malloc carved the body out of
//! the hole those left, and the rest of the hole, a little smaller than
//! the next body, stayed free for good: with 1,000 secrets of 4 KiB
//! cached, `malloc_info` counted 821 KB free, most of it in holes of
//! 3.7 – 4.0 KB. With pages, private memory fell from 6,084 – 6,492 KiB to
//! 5,652 – 5,720 KiB (issue 14; the bench's memory run). Bodies written into a
//! page one after another leave no such holes: the fetch buffers are freed
//! next to one another and reused by the next fetch.
//!
//! A page is one allocation, shared by the bodies written into it
//! ([`BytesMut::split`]); it is freed when its last body goes. A body is
//! wiped when its last reference goes, as a body of its own was. Bodies
//! too large to share a page usefully keep an allocation of their own.

use std::sync::{Mutex, PoisonError};

use bytes::{BufMut, Bytes, BytesMut};
use serde::Serialize;
use zeroize::{Zeroize, Zeroizing};

use super::wiped_bytes;

/// The size of a page. A page lives while any body in it does, so a value
/// never refreshed can keep up to this much in place (at most one page per
/// such value); 64 KiB holds fifteen 4 KiB secrets.
const PAGE: usize = 64 * 1024;

/// Bodies larger than this get an allocation of their own: packing them
/// would waste most of a page's tail, and they are few.
const LARGEST_PACKED: usize = PAGE / 4;

/// The page being filled. One per process: every cache's bodies share it,
/// as they share the allocator.
static PAGE_IN_FILL: Mutex<Option<BytesMut>> = Mutex::new(None);

/// `value` serialized as JSON into its body: in the page being filled,
/// or in a buffer of its own if it is large.
pub(super) fn body_of<T: Serialize>(value: &T) -> Bytes {
    let size = json_size(value);
    if size > LARGEST_PACKED {
        return wiped_bytes(json_of_size(value, size));
    }
    let mut page = PAGE_IN_FILL.lock().unwrap_or_else(PoisonError::into_inner);
    let page = match &mut *page {
        Some(page) if page.capacity() - page.len() >= size => page,
        // A fresh page; the bodies already in the last one keep it alive.
        slot => slot.insert(BytesMut::with_capacity(PAGE)),
    };
    // Serializing plain structs of strings and numbers cannot fail, and it
    // writes `size` bytes, which fit: the page never grows (a move would
    // leave an unwiped copy behind).
    let _ = serde_json::to_writer(page.writer(), value);
    Bytes::from_owner(Packed(page.split()))
}

/// Serialize `value` into a buffer of exactly its `size`: serde_json never
/// reallocates it (which would leave an unwiped copy of the value in freed
/// memory), and no spare capacity is kept.
pub(super) fn json_of_size<T: Serialize>(value: &T, size: usize) -> Zeroizing<Vec<u8>> {
    let mut buf = Zeroizing::new(Vec::with_capacity(size));
    let _ = serde_json::to_writer(&mut *buf, value);
    buf
}

/// The length of `value` as JSON, found without writing it.
pub(super) fn json_size<T: Serialize>(value: &T) -> usize {
    let mut size = ByteCount(0);
    // Serializing plain structs of strings and numbers cannot fail.
    let _ = serde_json::to_writer(&mut size, value);
    size.0
}

/// A writer that only counts.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A body's part of a page, owned by its [`Bytes`]: wiped when they go.
struct Packed(BytesMut);

impl AsRef<[u8]> for Packed {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Packed {
    fn drop(&mut self) {
        self.0.as_mut().zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize)]
    struct Value<'a> {
        v: &'a str,
    }

    /// Whether no two of `bodies` share a byte.
    fn disjoint(bodies: &[Bytes]) -> bool {
        let mut spans: Vec<(usize, usize)> = bodies
            .iter()
            .map(|b| (b.as_ptr() as usize, b.as_ptr() as usize + b.len()))
            .collect();
        spans.sort_unstable();
        spans.windows(2).all(|w| w[0].1 <= w[1].0)
    }

    #[test]
    fn bodies_packed_in_pages_are_whole_and_apart() {
        // Quarter pages and small ones: pages fill up and new ones start.
        let fill = "y".repeat(LARGEST_PACKED - 8);
        let bodies: Vec<Bytes> = (0..12)
            .map(|i| {
                let v = if i % 3 == 0 { fill.as_str() } else { "small" };
                body_of(&Value { v })
            })
            .collect();
        for (i, body) in bodies.iter().enumerate() {
            let v = if i % 3 == 0 { fill.as_str() } else { "small" };
            assert_eq!(&body[..], format!(r#"{{"v":"{v}"}}"#).as_bytes());
        }
        assert!(disjoint(&bodies));
    }

    #[test]
    fn a_large_body_gets_a_buffer_of_its_exact_size() {
        let big = "x".repeat(LARGEST_PACKED);
        let body = body_of(&Value { v: &big });
        assert_eq!(body.len(), LARGEST_PACKED + r#"{"v":""}"#.len());
        assert!(body.ends_with(br#"x"}"#));
    }

    #[test]
    fn the_exact_buffer_has_no_spare_capacity() {
        let value = Value { v: "abc" };
        let json = json_of_size(&value, json_size(&value));
        assert_eq!(json.capacity(), json.len());
        assert_eq!(&json[..], br#"{"v":"abc"}"#);
    }
}
