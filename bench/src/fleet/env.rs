//! One environment's life, per policy: INIT, invocations, freeze between
//! them, reaped after idle or at the end of its lifetime, then the next
//! cold start in its slot.
//!
//! sidekey environments run the real `SecretCache` over a [`SimFetch`],
//! driven as the extension drives it: `prefetch` during INIT (secrets only,
//! as `SIDEKEY_PREFETCH` lists secret ids), `refresh_due(1 s)` on every
//! INVOKE alongside the function, reads through `get`. The other policies
//! are small models of their own (see [`Policy`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sidekey_cache::{CacheConfig, Clock, Key, Kind, SecretCache};
use tokio::time::Instant;

use super::service::{Service, SimFetch, Thaw};
use super::stats::Tally;

/// How a fleet reads its secrets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The real cache with the extension's defaults.
    Sidekey,
    /// The official extension as documented: TTL capped at 300 s, no
    /// serve-stale, no single flight, no prefetch, no reads during INIT.
    OfficialLike,
    /// aws-secretsmanager-agent: fixed TTL, no refresh-ahead, no single
    /// flight, the last value served on a transient error.
    AgentLike,
    /// Every read goes to the service.
    NoCache,
}

impl Policy {
    /// In report order.
    pub const ALL: [Policy; 4] = [
        Policy::Sidekey,
        Policy::OfficialLike,
        Policy::AgentLike,
        Policy::NoCache,
    ];

    /// Its name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Policy::Sidekey => "sidekey",
            Policy::OfficialLike => "official-like",
            Policy::AgentLike => "agent-like",
            Policy::NoCache => "no cache",
        }
    }
}

/// The cache's TTL clock in step with tokio's paused virtual time, so TTLs
/// and deadlines run on one time line.
#[derive(Clone, Copy, Debug)]
pub struct VirtualClock;

impl Clock for VirtualClock {
    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }
}

/// What every environment of a scenario does.
#[derive(Clone, Debug)]
pub struct Workload {
    /// The ids the function reads, all of one kind.
    pub ids: Vec<String>,
    pub kind: Kind,
    /// Invocations per second per slot (Poisson).
    pub rate: f64,
    /// The function's own INIT (runtime start, imports).
    pub init: Duration,
    /// The handler's work after its reads.
    pub work: Duration,
    /// An environment idle this long is reaped.
    pub reap_idle: Duration,
    /// Lambda recycles environments; each lives a time drawn in this range.
    pub lifetime: (Duration, Duration),
    /// No invocation arrives after this (from the run's start).
    pub window: Duration,
    pub ttl: Duration,
}

/// One environment under one policy.
enum Env {
    Sidekey(SecretCache<SimFetch, VirtualClock>),
    Model {
        fetch: SimFetch,
        /// id index -> (version, fetched at).
        held: HashMap<usize, (u32, Instant)>,
    },
}

/// What the sidekey policy runs with: the extension's defaults.
pub fn sidekey_config(ttl: Duration) -> CacheConfig {
    CacheConfig {
        secret_ttl: ttl,
        parameter_ttl: ttl,
        ..CacheConfig::default()
    }
}

/// How long the extension lets an INVOKE wait for refreshes
/// (`INVOKE_REFRESH_BUDGET` in the extension).
const INVOKE_REFRESH_BUDGET: Duration = Duration::from_secs(1);

/// Run one slot: environments one after the other, from `first` (a cold
/// start) to the end of the window.
pub async fn slot(
    policy: Policy,
    w: Arc<Workload>,
    service: Arc<Service>,
    start: Instant,
    first: Duration,
    seed: u64,
    tally: Arc<Mutex<Tally>>,
) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let retry_rng = Arc::new(Mutex::new(fastrand::Rng::with_seed(seed ^ 0x5eed)));
    let keys: Vec<Key> = w
        .ids
        .iter()
        .map(|id| match w.kind {
            Kind::Secret => Key::secret(id.clone()),
            Kind::Parameter => Key::parameter(id.clone(), true),
        })
        .collect();
    let mut next = start + first;
    let end = start + w.window;
    while next < end {
        // A cold start.
        tokio::time::sleep_until(next).await;
        let thaw = Arc::new(Thaw::default());
        thaw.set(true);
        let fetch = SimFetch {
            service: Arc::clone(&service),
            thaw: Arc::clone(&thaw),
            rng: Arc::clone(&retry_rng),
            retry_batch: false,
        };
        let (lo, hi) = w.lifetime;
        let dies = next + lo + (hi - lo).mul_f64(rng.f64());
        let mut env = match policy {
            Policy::Sidekey => {
                let cache = SecretCache::with_clock(fetch, sidekey_config(w.ttl), VirtualClock);
                if w.kind == Kind::Secret {
                    // The extension prefetches in a task of its own, racing
                    // the function's init and first reads.
                    let c = cache.clone();
                    let ids = w.ids.clone();
                    tokio::spawn(async move {
                        c.prefetch(&ids).await;
                    });
                } else {
                    // `prefetch_parameters` (the extension does not list
                    // parameters to prefetch yet: see the report).
                    cache.prefetch_parameters(&w.ids, true);
                }
                Env::Sidekey(cache)
            }
            _ => Env::Model {
                fetch,
                held: HashMap::new(),
            },
        };
        tally.lock().unwrap().cold_starts += 1;
        tokio::time::sleep(w.init).await;
        // Invocations until reaped.
        loop {
            let arrived = Instant::now();
            invoke(policy, &mut env, &w, &keys, &service, start, &tally).await;
            thaw.set(false);
            // Arrivals do not depend on how long invocations take, so every
            // policy sees the same traffic; one that arrives while the last
            // is still running waits for it.
            let gap = Duration::from_secs_f64(-(1.0 - rng.f64()).ln() / w.rate);
            next = (arrived + gap).max(Instant::now());
            if next - Instant::now() > w.reap_idle || next >= dies || next >= end {
                break;
            }
            tokio::time::sleep_until(next).await;
            thaw.set(true);
        }
        if let Env::Sidekey(cache) = &env {
            cache.close();
        }
    }
}

async fn invoke(
    policy: Policy,
    env: &mut Env,
    w: &Workload,
    keys: &[Key],
    service: &Service,
    start: Instant,
    tally: &Mutex<Tally>,
) {
    let refresh = match env {
        Env::Sidekey(cache) => {
            let c = cache.clone();
            Some(tokio::spawn(async move {
                c.refresh_due(INVOKE_REFRESH_BUDGET).await;
            }))
        }
        Env::Model { .. } => None,
    };
    // The extension sees INVOKE before the function's first request crosses
    // localhost: let `refresh_due` register its refreshes first.
    tokio::task::yield_now().await;
    for (i, key) in keys.iter().enumerate() {
        let began = Instant::now();
        let served: Option<u32> = match env {
            Env::Sidekey(cache) => match cache.get(key).await {
                Ok(v) => v
                    .text()
                    .ok()
                    .and_then(|t| t.strip_prefix('v').and_then(|n| n.parse().ok())),
                Err(_) => None,
            },
            Env::Model { fetch, held } => model_read(policy, fetch, held, i, key, w.ttl).await,
        };
        let latency = Instant::now() - began;
        let current = service.version(key.id());
        tally
            .lock()
            .unwrap()
            .read(served, current, latency, Instant::now() - start);
    }
    tally.lock().unwrap().invocations += 1;
    tokio::time::sleep(w.work).await;
    if let Some(task) = refresh {
        let _ = task.await;
    }
}

/// The read of the policies that are not sidekey.
async fn model_read(
    policy: Policy,
    fetch: &SimFetch,
    held: &mut HashMap<usize, (u32, Instant)>,
    i: usize,
    key: &Key,
    ttl: Duration,
) -> Option<u32> {
    let now = Instant::now();
    let ttl = match policy {
        Policy::OfficialLike => ttl.min(Duration::from_secs(300)),
        Policy::NoCache => Duration::ZERO,
        _ => ttl,
    };
    if let Some(&(v, at)) = held.get(&i) {
        if now - at < ttl {
            return Some(v);
        }
    }
    match fetch.read(key).await {
        Ok(v) => {
            if !ttl.is_zero() {
                held.insert(i, (v, Instant::now()));
            }
            Some(v)
        }
        Err(e) if policy == Policy::AgentLike && e.is_transient() => held.get(&i).map(|h| h.0),
        Err(_) => None,
    }
}
