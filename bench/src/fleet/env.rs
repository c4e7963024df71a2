//! Environments and invocations, per policy.
//!
//! A *slot* is one stream of invocations (Poisson, the same for every
//! policy) routed to a warm environment of its own when one is idle, to a
//! new one (a cold start) otherwise, as [`Account`] admits them. An
//! environment is frozen between invocations, reaped after 10 idle
//! minutes, recycled after a lifetime drawn per environment, and reset
//! (discarded with its caches) when an invocation runs past the
//! function's timeout ("Lambda execution environment lifecycle": a
//! timed-out invoke resets the environment, extensions included).
//!
//! Under Lambda Managed Instances a slot is one environment, never frozen,
//! running up to 16 invocations at once; an in-process cache is one per
//! process there.
//!
//! sidekey environments run the real `SecretCache` over a [`SimFetch`],
//! driven as the extension drives it: `prefetch` during INIT when
//! configured, `refresh_due(1 s)` on every INVOKE alongside the function
//! (the environment held thawed until it returns), reads through `get`;
//! never frozen, `start_due` whenever `next_due` says.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sidekey_cache::{CacheConfig, Clock, Key, Kind, SecretCache};
use tokio::time::Instant;

use super::lambda::Account;
use super::policy::{Model, Policy};
use super::retry::{api_of, SdkClient, SimFetch, Thaw};
use super::service::{Api, Service};
use super::stats::Tally;

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
    /// The function's timeout (Lambda's default, 3 s).
    pub timeout: Duration,
    /// An environment idle this long is reaped.
    pub reap_idle: Duration,
    /// Lambda recycles environments; each lives a time drawn in this range
    /// (AWS publishes none).
    pub lifetime: (Duration, Duration),
    /// No invocation arrives after this (from the run's start).
    pub window: Duration,
    pub ttl: Duration,
    /// Lambda Managed Instances: invocations at once per environment, and
    /// never frozen. `None`: standard Lambda.
    pub lmi: Option<usize>,
}

/// What the scenario configures for "sidekey (configured)".
#[derive(Clone, Copy, Debug, Default)]
pub struct Tuning {
    pub prefetch: bool,
    pub fallback: bool,
    pub version_check: bool,
}

/// Everything one run's environments share.
pub struct Ctx {
    pub policy: Policy,
    pub w: Workload,
    pub tuning: Tuning,
    pub service: Arc<Service>,
    pub account: Arc<Account>,
    pub tally: Mutex<Tally>,
    pub start: Instant,
    pub keys: Vec<Key>,
    pub fell_back: Arc<AtomicU64>,
}

impl Ctx {
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn sidekey_config(&self) -> CacheConfig {
        let configured = self.policy == Policy::SidekeyConfigured;
        CacheConfig {
            secret_ttl: self.w.ttl,
            parameter_ttl: self.w.ttl,
            version_check: configured && self.tuning.version_check,
            ..CacheConfig::default()
        }
    }
}

/// One id's value held by a rival: its version and until when it is
/// served without asking.
type Store = HashMap<usize, (u32, Option<Instant>)>;

enum Kernel {
    Sidekey(SecretCache<SimFetch, VirtualClock>),
    Model {
        model: Model,
        client: Arc<SdkClient>,
        /// One per process for an in-process cache under LMI, else one.
        stores: Arc<Vec<Mutex<Store>>>,
        /// Which processes are running an invocation.
        busy: Mutex<Vec<bool>>,
    },
}

/// One execution environment.
pub struct Env {
    kernel: Kernel,
    thaw: Arc<Thaw>,
    dies: Instant,
    last_used: Mutex<Instant>,
    /// Per process (one but for an in-process cache under LMI), the ids a
    /// read here has been served: a later failed read of one is a value
    /// the cache had and did not serve.
    held: Vec<Mutex<Vec<bool>>>,
}

impl Env {
    fn close(&self) {
        if let Kernel::Sidekey(cache) = &self.kernel {
            cache.close();
        }
    }
}

fn u32_of_text(v: &sidekey_cache::Cached) -> Option<u32> {
    v.text()
        .ok()
        .and_then(|t| t.strip_prefix('v').and_then(|n| n.parse().ok()))
}

/// Create an environment and run its INIT; `Err` when the INIT failed
/// (the seed's global read failed).
async fn cold_start(ctx: &Arc<Ctx>, rng: &mut fastrand::Rng) -> Result<Arc<Env>, Arc<Env>> {
    let thaw = Arc::new(Thaw::default());
    thaw.set(true);
    let (lo, hi) = ctx.w.lifetime;
    let dies = Instant::now() + lo + (hi - lo).mul_f64(rng.f64());
    let procs = match ctx.w.lmi {
        Some(n) if ctx.policy.in_process() => n,
        _ => 1,
    };
    let kernel = match ctx.policy.model(ctx.w.ttl) {
        None => {
            let fetch = SimFetch {
                service: Arc::clone(&ctx.service),
                thaw: Arc::clone(&thaw),
                rng: Arc::new(Mutex::new(fastrand::Rng::with_seed(rng.u64(..)))),
                fallback: ctx.policy == Policy::SidekeyConfigured && ctx.tuning.fallback,
                fell_back: Arc::clone(&ctx.fell_back),
            };
            let cache = SecretCache::with_clock(fetch, ctx.sidekey_config(), VirtualClock);
            if ctx.policy == Policy::SidekeyConfigured && ctx.tuning.prefetch {
                match ctx.w.kind {
                    Kind::Secret => {
                        // The extension prefetches in a task of its own,
                        // racing the function's init and first reads.
                        let c = cache.clone();
                        let ids = ctx.w.ids.clone();
                        tokio::spawn(async move {
                            c.prefetch(&ids).await;
                        });
                    }
                    Kind::Parameter => {
                        cache.prefetch_parameters(&ctx.w.ids, true);
                    }
                }
            }
            Kernel::Sidekey(cache)
        }
        Some(model) => {
            let client = Arc::new(SdkClient {
                service: Arc::clone(&ctx.service),
                rng: Mutex::new(fastrand::Rng::with_seed(rng.u64(..))),
            });
            let stores: Arc<Vec<Mutex<Store>>> =
                Arc::new((0..procs).map(|_| Mutex::new(Store::new())).collect());
            if model.prefetch && ctx.w.kind == Kind::Secret {
                // The agent's prefetch is a background task at start
                // (`prefetch.rs`, `start_prefetch_task`): it races the
                // function's init and first reads, which miss until it
                // lands (no single flight).
                let client = Arc::clone(&client);
                let ids = ctx.w.ids.clone();
                let ttl = model.ttl;
                let landed = Arc::clone(&stores);
                tokio::spawn(async move {
                    for (c, chunk) in ids.chunks(20).enumerate() {
                        let n = chunk.len() as u64;
                        if client
                            .call(Api::BatchGetSecretValue, n, &chunk[0])
                            .await
                            .is_ok()
                        {
                            let mut s = landed[0].lock().unwrap_or_else(|e| e.into_inner());
                            for (j, id) in chunk.iter().enumerate() {
                                let v = client.service.version(id);
                                s.insert(c * 20 + j, (v, ttl.map(|t| Instant::now() + t)));
                            }
                        }
                    }
                });
            }
            Kernel::Model {
                model,
                client,
                stores,
                busy: Mutex::new(vec![false; procs]),
            }
        }
    };
    let env = Arc::new(Env {
        kernel,
        thaw,
        dies,
        last_used: Mutex::new(Instant::now()),
        held: (0..procs)
            .map(|_| Mutex::new(vec![false; ctx.keys.len()]))
            .collect(),
    });
    ctx.tally().cold_starts += 1;
    tokio::time::sleep(ctx.w.init).await;
    // The seed's module-level reads, each process its own.
    if let Kernel::Model {
        model,
        client,
        stores,
        ..
    } = &env.kernel
    {
        if model.at_init {
            for store in stores.iter() {
                for (i, key) in ctx.keys.iter().enumerate() {
                    let api = api_of(key.kind());
                    // INIT is bounded at 10 s.
                    match tokio::time::timeout(
                        Duration::from_secs(10),
                        client.call(api, 1, key.id()),
                    )
                    .await
                    {
                        Ok(Ok(v)) => {
                            store
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .insert(i, (v, None));
                        }
                        _ => {
                            ctx.tally().init_failures += 1;
                            return Err(env);
                        }
                    }
                }
            }
        }
    }
    Ok(env)
}

/// Run one slot under standard Lambda: its invocations from `first` to
/// the end of the window, on the environments they need.
pub async fn slot(ctx: Arc<Ctx>, function: usize, first: Duration, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut env_rng = fastrand::Rng::with_seed(seed ^ 0x5eed);
    let pool: Arc<Mutex<Vec<Arc<Env>>>> = Arc::new(Mutex::new(Vec::new()));
    let mut running = tokio::task::JoinSet::new();
    let end = ctx.start + ctx.w.window;
    let mut next = ctx.start + first;
    while next < end {
        tokio::time::sleep_until(next).await;
        let now = Instant::now();
        // The warm environment used last, if any is idle and alive.
        let warm = {
            let mut p = pool.lock().unwrap_or_else(|e| e.into_inner());
            let mut dead = Vec::new();
            p.retain(|e| {
                let idle = now - *e.last_used.lock().unwrap_or_else(|e| e.into_inner());
                let alive = now < e.dies && idle < ctx.w.reap_idle;
                if !alive {
                    dead.push(Arc::clone(e));
                }
                alive
            });
            for e in dead {
                e.close();
            }
            p.pop()
        };
        if ctx.account.admit(function, warm.is_none(), now) {
            let ctx = Arc::clone(&ctx);
            let pool = Arc::clone(&pool);
            let seed = env_rng.u64(..);
            running.spawn(async move {
                let mut rng = fastrand::Rng::with_seed(seed);
                let env = match warm {
                    Some(env) => Some(env),
                    None => match cold_start(&ctx, &mut rng).await {
                        Ok(env) => Some(env),
                        Err(env) => {
                            env.close();
                            ctx.tally().failed_invocation(ctx.keys.len());
                            None
                        }
                    },
                };
                if let Some(env) = env {
                    let kept = invoke(&ctx, &env, true).await;
                    *env.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                    if kept {
                        pool.lock().unwrap_or_else(|e| e.into_inner()).push(env);
                    } else {
                        env.close();
                    }
                }
                ctx.account.release();
            });
        } else {
            if let Some(env) = warm {
                pool.lock().unwrap_or_else(|e| e.into_inner()).push(env);
            }
            ctx.tally().throttled_invocations += 1;
        }
        let gap = Duration::from_secs_f64(-(1.0 - rng.f64()).ln() / ctx.w.rate);
        next += gap;
    }
    while running.join_next().await.is_some() {}
    for env in pool.lock().unwrap_or_else(|e| e.into_inner()).drain(..) {
        env.close();
    }
}

/// Run one slot under Lambda Managed Instances: one environment, never
/// frozen, up to `per_env` invocations at once, its arrivals `per_env`
/// times a standard slot's.
pub async fn lmi_slot(ctx: Arc<Ctx>, per_env: usize, first: Duration, seed: u64) {
    let mut rng = fastrand::Rng::with_seed(seed);
    let end = ctx.start + ctx.w.window;
    tokio::time::sleep(first).await;
    let env = loop {
        match cold_start(&ctx, &mut rng).await {
            Ok(env) => break env,
            Err(env) => env.close(),
        }
    };
    // sidekey's own timer: what the extension runs where nothing freezes.
    let timer = match &env.kernel {
        Kernel::Sidekey(cache) => {
            let cache = cache.clone();
            let every = cache
                .config()
                .earliest_refresh()
                .unwrap_or(Duration::from_secs(60));
            Some(tokio::spawn(async move {
                loop {
                    let now = Instant::now();
                    let at = cache
                        .next_due()
                        .map(Instant::from_std)
                        .unwrap_or(now + every)
                        .max(now + Duration::from_millis(100))
                        .min(now + every);
                    if at >= end {
                        return;
                    }
                    tokio::time::sleep_until(at).await;
                    cache.start_due();
                }
            }))
        }
        _ => None,
    };
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut running = tokio::task::JoinSet::new();
    let mut next = Instant::now();
    let rate = ctx.w.rate * per_env as f64;
    while next < end {
        tokio::time::sleep_until(next).await;
        use std::sync::atomic::Ordering::SeqCst;
        if in_flight.load(SeqCst) < per_env {
            in_flight.fetch_add(1, SeqCst);
            let (ctx, env, in_flight) =
                (Arc::clone(&ctx), Arc::clone(&env), Arc::clone(&in_flight));
            running.spawn(async move {
                invoke(&ctx, &env, false).await;
                in_flight.fetch_sub(1, SeqCst);
            });
        } else {
            ctx.tally().throttled_invocations += 1;
        }
        next += Duration::from_secs_f64(-(1.0 - rng.f64()).ln() / rate);
    }
    while running.join_next().await.is_some() {}
    if let Some(t) = timer {
        t.abort();
    }
    env.close();
}

/// One invocation on `env`; whether the environment lives on (a timed-out
/// one is reset).
async fn invoke(ctx: &Arc<Ctx>, env: &Arc<Env>, freezes: bool) -> bool {
    env.thaw.set(true);
    let refresh = match &env.kernel {
        Kernel::Sidekey(cache) if freezes => {
            let c = cache.clone();
            Some(tokio::spawn(async move {
                c.refresh_due(INVOKE_REFRESH_BUDGET).await;
            }))
        }
        _ => None,
    };
    // The extension sees INVOKE before the function's first request crosses
    // localhost: let `refresh_due` register its refreshes first.
    tokio::task::yield_now().await;
    let proc = match &env.kernel {
        Kernel::Model { busy, .. } => {
            let mut b = busy.lock().unwrap_or_else(|e| e.into_inner());
            let i = b.iter().position(|x| !x).unwrap_or(0);
            b[i] = true;
            i
        }
        Kernel::Sidekey(_) => 0,
    };
    let deadline = Instant::now() + ctx.w.timeout;
    let held = &env.held[proc.min(env.held.len() - 1)];
    let mut done = 0usize;
    let finished = tokio::time::timeout_at(deadline, async {
        for (i, key) in ctx.keys.iter().enumerate() {
            let began = Instant::now();
            let served = match &env.kernel {
                Kernel::Sidekey(cache) => {
                    cache.get(key).await.ok().as_deref().and_then(u32_of_text)
                }
                Kernel::Model {
                    model,
                    client,
                    stores,
                    ..
                } => model_read(model, client, &stores[proc], i, key).await,
            };
            let current = ctx.service.version(key.id());
            let mut t = ctx.tally();
            t.read(
                served,
                current,
                Instant::now() - began,
                Instant::now() - ctx.start,
            );
            let mut h = held.lock().unwrap_or_else(|e| e.into_inner());
            match served {
                None if h[i] => t.failed_held += 1,
                Some(_) => h[i] = true,
                None => {}
            }
            drop(t);
            done += 1;
        }
    })
    .await
    .is_ok();
    if let Kernel::Model { busy, .. } = &env.kernel {
        busy.lock().unwrap_or_else(|e| e.into_inner())[proc] = false;
    }
    if !finished {
        let mut t = ctx.tally();
        t.timeouts += 1;
        // The read under way when the timeout struck, then those never made.
        t.read(None, 0, ctx.w.timeout, Instant::now() - ctx.start);
        t.unserved(ctx.keys.len() - done - 1);
        let h = held.lock().unwrap_or_else(|e| e.into_inner());
        t.failed_held += h[done..].iter().filter(|x| **x).count() as u64;
        drop(t);
        if let Some(task) = refresh {
            task.abort();
        }
        env.thaw.set(!freezes);
        return !freezes;
    }
    ctx.tally().invocations += 1;
    tokio::time::sleep(ctx.w.work).await;
    if let Some(task) = refresh {
        let _ = task.await;
    }
    if freezes {
        env.thaw.set(false);
    }
    true
}

/// How long the extension lets an INVOKE wait for refreshes
/// (`INVOKE_REFRESH_BUDGET` in `extension/src/lifecycle.rs`).
const INVOKE_REFRESH_BUDGET: Duration = Duration::from_secs(1);

/// A rival's read of id `i`.
async fn model_read(
    model: &Model,
    client: &SdkClient,
    store: &Mutex<Store>,
    i: usize,
    key: &Key,
) -> Option<u32> {
    let now = Instant::now();
    let lock = || store.lock().unwrap_or_else(|e| e.into_inner());
    let held = lock().get(&i).copied();
    let fresh_until = |t: Instant| model.ttl.map(|ttl| t + ttl);
    if let Some((v, until)) = held {
        if until.is_none_or(|u| now < u) {
            return Some(v);
        }
        if model.describe_first {
            match client.call(Api::DescribeSecret, 0, key.id()).await {
                Ok(current) if current == v => {
                    lock().insert(i, (v, fresh_until(Instant::now())));
                    return Some(v);
                }
                Err(e) if e.is_transient() && model.serve_cached_on_error => {
                    lock().insert(i, (v, fresh_until(Instant::now())));
                    return Some(v);
                }
                Err(_) => return None,
                Ok(_) => {}
            }
        }
    }
    match client.call(api_of(key.kind()), 1, key.id()).await {
        Ok(v) => {
            if model.ttl != Some(Duration::ZERO) {
                lock().insert(i, (v, fresh_until(Instant::now())));
            }
            Some(v)
        }
        Err(e) if e.is_transient() && model.serve_cached_on_error => {
            let (v, _) = held?;
            lock().insert(i, (v, fresh_until(Instant::now())));
            Some(v)
        }
        Err(_) => None,
    }
}
