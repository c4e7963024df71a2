//! The roles sidekey reads as (`roleArn`): their ARNs checked, an optional
//! allowlist, a bounded least-recently-used set, and each role's assumed
//! credentials kept until shortly before they expire.
//!
//! Better than refusing the 21st role as the peer agent does: at the bound
//! the least recently used role is evicted, its credentials wiped (they
//! live in zeroizing buffers and go with their last reference), and the
//! caller told which, so the cache drops that role's entries too
//! ([`Roles::admit`]). An allowlist (`*` wildcards in the role's name)
//! keeps a caller that has the token from pivoting into any role the
//! function may assume.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use crate::sigv4::Credentials;

/// Assumed credentials are assumed again once they are this close to
/// expiring.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

/// Why a role was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RoleRefusal {
    /// Not an IAM role ARN.
    #[error("roleArn is not an IAM role ARN (arn:PARTITION:iam::ACCOUNT:role/NAME): {0}")]
    Malformed(&'static str),
    /// Not on the allowlist.
    #[error("roleArn is not among the roles SIDEKEY_ALLOWED_ROLE_ARNS allows")]
    NotAllowed,
}

/// What the caller must know of a role ARN: why it is not one, if not.
pub fn check_arn(arn: &str) -> Result<(), &'static str> {
    check(arn, false)
}

/// The same for an allowlist pattern, which may hold `*` in the role name.
pub fn check_pattern(pattern: &str) -> Result<(), &'static str> {
    check(pattern, true)
}

fn check(arn: &str, pattern: bool) -> Result<(), &'static str> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(partition), Some("iam"), Some(""), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err("not of the form arn:PARTITION:iam::ACCOUNT:role/NAME");
    };
    if !partition.starts_with("aws") {
        return Err("the partition is not an AWS partition");
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err("the account is not 12 digits");
    }
    let Some(name) = resource.strip_prefix("role/") else {
        return Err("the resource is not role/NAME");
    };
    let allowed =
        |c: char| c.is_ascii_alphanumeric() || "+=,.@_-/".contains(c) || (pattern && c == '*');
    if name.is_empty() || name.len() > 512 || !name.chars().all(allowed) {
        return Err("the role name is empty, too long or holds a character IAM refuses");
    }
    Ok(())
}

/// Whether `arn` matches `pattern`, `*` standing for any run of characters.
fn matches(pattern: &str, arn: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return false;
    };
    let Some(mut rest) = arn.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// One role: its credentials, fetched again when about to expire; callers
/// at the same moment share one `AssumeRole`.
#[derive(Default)]
pub(crate) struct RoleSlot {
    pub current: tokio::sync::Mutex<Option<(Arc<Credentials>, SystemTime)>>,
}

/// A role held: its ARN, its slot, and the tick it was last used at.
type Held = (Arc<str>, Arc<RoleSlot>, u64);

/// The roles in use, least recently used first out.
pub struct Roles {
    max: usize,
    allowed: Vec<String>,
    /// Each role, with the tick it was last used at.
    slots: Mutex<Vec<Held>>,
    ticks: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Roles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Roles")
            .field("max", &self.max)
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

impl Roles {
    /// At most `max` roles at once (at least one), those matching one of
    /// `allowed` only (any, when empty; the patterns checked by the caller
    /// with [`check_pattern`]).
    pub fn new(max: usize, allowed: Vec<String>) -> Self {
        Self {
            max: max.max(1),
            allowed,
            slots: Mutex::new(Vec::new()),
            ticks: Default::default(),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Vec<Held>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Take `arn` in for a read: checked, allowed, and made the most
    /// recently used. When that passes the bound, the least recently used
    /// role is evicted (its credentials wiped as their last reference
    /// goes) and returned, for the caller to drop what it holds for it.
    pub fn admit(&self, arn: &str) -> Result<Option<Arc<str>>, RoleRefusal> {
        check_arn(arn).map_err(RoleRefusal::Malformed)?;
        if !self.allowed.is_empty() && !self.allowed.iter().any(|p| matches(p, arn)) {
            return Err(RoleRefusal::NotAllowed);
        }
        let tick = self
            .ticks
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut slots = self.slots();
        if let Some(slot) = slots.iter_mut().find(|(a, _, _)| &**a == arn) {
            slot.2 = tick;
            return Ok(None);
        }
        let mut evicted = None;
        if slots.len() >= self.max {
            if let Some(oldest) = (0..slots.len()).min_by_key(|i| slots[*i].2) {
                evicted = Some(slots.swap_remove(oldest).0);
            }
        }
        slots.push((Arc::from(arn), Arc::default(), tick));
        Ok(evicted)
    }

    /// `arn`'s slot; a role not (or no longer) admitted gets one of its own
    /// for this call, not kept.
    pub(crate) fn slot(&self, arn: &str) -> Arc<RoleSlot> {
        self.slots()
            .iter()
            .find(|(a, _, _)| &**a == arn)
            .map(|(_, slot, _)| Arc::clone(slot))
            .unwrap_or_default()
    }

    /// The roles held now, most recently used last.
    pub fn held(&self) -> Vec<Arc<str>> {
        let mut slots: Vec<(Arc<str>, u64)> = self
            .slots()
            .iter()
            .map(|(a, _, t)| (Arc::clone(a), *t))
            .collect();
        slots.sort_by_key(|(_, t)| *t);
        slots.into_iter().map(|(a, _)| a).collect()
    }

    /// Forget every role and wipe its credentials: for SHUTDOWN.
    pub fn clear(&self) {
        self.slots().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROLE: &str = "arn:aws:iam::123456789012:role/app/reader";

    #[test]
    fn role_arns_are_checked() {
        assert_eq!(check_arn(ROLE), Ok(()));
        assert_eq!(check_arn("arn:aws-cn:iam::123456789012:role/r"), Ok(()));
        for bad in [
            "",
            "reader",
            "arn:aws:iam::123456789012:user/bob",
            "arn:aws:iam::12345:role/r",
            "arn:aws:sts::123456789012:role/r",
            "arn:aws:iam:us-east-1:123456789012:role/r",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/a b",
            "arn:aws:iam::123456789012:role/app-*",
        ] {
            assert!(check_arn(bad).is_err(), "{bad}");
        }
        assert_eq!(
            check_pattern("arn:aws:iam::123456789012:role/app-*"),
            Ok(())
        );
    }

    #[test]
    fn patterns_match_with_wildcards_in_the_name() {
        let p = "arn:aws:iam::123456789012:role/app-*";
        assert!(matches(p, "arn:aws:iam::123456789012:role/app-reader"));
        assert!(matches(p, "arn:aws:iam::123456789012:role/app-"));
        assert!(!matches(p, "arn:aws:iam::123456789012:role/admin"));
        assert!(!matches(p, "arn:aws:iam::999999999999:role/app-reader"));
        assert!(matches(
            "arn:aws:iam::123456789012:role/*-ro-*",
            "arn:aws:iam::123456789012:role/x-ro-y"
        ));
        assert!(matches(ROLE, ROLE));
        assert!(!matches(ROLE, &format!("{ROLE}x")));
    }

    #[test]
    fn the_least_recently_used_role_is_evicted_past_the_bound() {
        let roles = Roles::new(2, Vec::new());
        let arn = |n: u32| format!("arn:aws:iam::123456789012:role/r{n}");
        assert_eq!(roles.admit(&arn(1)), Ok(None));
        assert_eq!(roles.admit(&arn(2)), Ok(None));
        assert_eq!(roles.admit(&arn(1)), Ok(None), "r1 used again");
        let evicted = roles.admit(&arn(3)).unwrap();
        assert_eq!(evicted.as_deref(), Some(arn(2).as_str()));
        assert_eq!(roles.held(), [Arc::from(arn(1)), Arc::from(arn(3))]);
        assert!(matches!(
            roles.admit("not an arn"),
            Err(RoleRefusal::Malformed(_))
        ));
    }

    #[test]
    fn the_allowlist_refuses_other_roles() {
        let roles = Roles::new(20, vec!["arn:aws:iam::123456789012:role/app-*".into()]);
        assert_eq!(
            roles.admit("arn:aws:iam::123456789012:role/app-reader"),
            Ok(None)
        );
        assert_eq!(
            roles.admit("arn:aws:iam::123456789012:role/admin"),
            Err(RoleRefusal::NotAllowed)
        );
    }
}
