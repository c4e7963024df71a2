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
//!
//! A body that outlives its neighbours (a pinned `versionId`, a value not
//! read and so never refreshed) keeps its whole page alive, and the cache's
//! byte bound counts only the body. Each page therefore counts its live
//! bytes ([`Page`]); a body alone in a sealed page that is mostly dead is
//! [`sparse`](Body::sparse), and the cache repacks such bodies into the page
//! being filled ([`Body::repacked`]), freeing the old page (issue 26).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

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

/// A page is sparse, and its lone bodies worth moving, once less than
/// this share of it is alive.
const SPARSE: usize = PAGE / 4;

/// What is known of a page: how many of its bytes are alive, and whether
/// it is still being filled.
#[derive(Debug, Default)]
pub(super) struct Page {
    live: AtomicUsize,
    sealed: AtomicBool,
}

/// Where bodies are written: the page being filled and what is known of it.
type Fill = Mutex<Option<(BytesMut, Arc<Page>)>>;

/// The page being filled. One per process: every cache's bodies share it,
/// as they share the allocator.
static PAGE_IN_FILL: Fill = Mutex::new(None);

/// A cached body: the bytes, and the page they live in (none for a body
/// with an allocation of its own).
#[derive(Clone)]
pub(super) struct Body {
    pub bytes: Bytes,
    page: Option<Arc<Page>>,
}

impl Body {
    /// Whether this body sits in a sealed page of which less than a quarter
    /// is alive: it keeps the rest from being freed.
    pub fn sparse(&self) -> bool {
        self.page
            .as_ref()
            .is_some_and(|p| p.sealed.load(Relaxed) && p.live.load(Relaxed) < SPARSE)
    }

    /// The same bytes written again, into the page being filled. This
    /// body is wiped as its last reference goes, as ever.
    pub fn repacked(&self) -> Body {
        self.repacked_in(&PAGE_IN_FILL)
    }

    fn repacked_in(&self, fill: &Fill) -> Body {
        packed(fill, self.bytes.len(), |page| page.put_slice(&self.bytes))
    }
}

/// `value` serialized as JSON into its body: in the page being filled,
/// or in a buffer of its own if it is large.
pub(super) fn body_of<T: Serialize>(value: &T) -> Body {
    body_in(&PAGE_IN_FILL, value)
}

fn body_in<T: Serialize>(fill: &Fill, value: &T) -> Body {
    let size = json_size(value);
    if size > LARGEST_PACKED {
        return Body {
            bytes: wiped_bytes(json_of_size(value, size)),
            page: None,
        };
    }
    // Serializing plain structs of strings and numbers cannot fail, and it
    // writes `size` bytes, which fit.
    packed(fill, size, |page| {
        let _ = serde_json::to_writer(page.writer(), value);
    })
}

/// A body of `size` bytes (at most [`LARGEST_PACKED`]) that `write` puts
/// into the page being filled: the page never grows (a move would leave an
/// unwiped copy behind).
fn packed(fill: &Fill, size: usize, write: impl FnOnce(&mut BytesMut)) -> Body {
    let mut fill = fill.lock().unwrap_or_else(PoisonError::into_inner);
    let fits = fill
        .as_ref()
        .is_some_and(|(page, _)| page.capacity() - page.len() >= size);
    if !fits {
        // A fresh page; the bodies already in the last one keep it alive.
        if let Some((_, old)) = fill.take() {
            old.sealed.store(true, Relaxed);
        }
        *fill = Some((BytesMut::with_capacity(PAGE), Arc::default()));
    }
    let (part, page) = match fill.as_mut() {
        Some((page, stats)) => {
            write(page);
            (page.split(), Arc::clone(stats))
        }
        // Not reached (the page was just made); a page of its own would do.
        None => {
            let mut own = BytesMut::with_capacity(size);
            write(&mut own);
            (own, Arc::default())
        }
    };
    page.live.fetch_add(part.len(), Relaxed);
    Body {
        bytes: Bytes::from_owner(Packed {
            part,
            page: Arc::clone(&page),
        }),
        page: Some(page),
    }
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

/// A body's part of a page, owned by its [`Bytes`]: wiped when they go,
/// and no longer counted alive in its page.
struct Packed {
    part: BytesMut,
    page: Arc<Page>,
}

impl AsRef<[u8]> for Packed {
    fn as_ref(&self) -> &[u8] {
        &self.part
    }
}

impl Drop for Packed {
    fn drop(&mut self) {
        self.part.as_mut().zeroize();
        self.page.live.fetch_sub(self.part.len(), Relaxed);
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
                body_of(&Value { v }).bytes
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
        assert_eq!(body.bytes.len(), LARGEST_PACKED + r#"{"v":""}"#.len());
        assert!(body.bytes.ends_with(br#"x"}"#));
        assert!(!body.sparse(), "a body of its own pins no page");
    }

    #[test]
    fn a_body_outliving_its_page_is_sparse_until_repacked() {
        // Pages of its own: other tests write into the process's.
        let fill: Fill = Mutex::new(None);
        // Fourteen bodies of 4,508 bytes fill a page; a fifteenth seals it.
        let v = "z".repeat(4500);
        let mut first: Vec<Body> = (0..14).map(|_| body_in(&fill, &Value { v: &v })).collect();
        let page = first[0].page.clone().unwrap();
        let later: Vec<Body> = (0..14).map(|_| body_in(&fill, &Value { v: &v })).collect();
        assert!(page.sealed.load(Relaxed));
        assert!(!first[0].sparse(), "a full page");
        // All but one of the page's bodies go: the last keeps 64 KiB alive.
        let lone = first.remove(7);
        drop(first);
        assert_eq!(page.live.load(Relaxed), lone.bytes.len());
        assert!(lone.sparse());
        let moved = lone.repacked_in(&fill);
        assert_eq!(moved.bytes, lone.bytes);
        assert!(!Arc::ptr_eq(moved.page.as_ref().unwrap(), &page));
        drop(lone);
        assert_eq!(page.live.load(Relaxed), 0, "nothing keeps the old page");
        assert!(!moved.sparse(), "the page being filled is not sealed");
        drop(later);
    }

    #[test]
    fn the_exact_buffer_has_no_spare_capacity() {
        let value = Value { v: "abc" };
        let json = json_of_size(&value, json_size(&value));
        assert_eq!(json.capacity(), json.len());
        assert_eq!(&json[..], br#"{"v":"abc"}"#);
    }
}
