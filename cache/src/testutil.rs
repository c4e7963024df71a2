//! A scripted [`Fetch`] double for the clock-driven unit tests.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::clock::{Clock, WallClock};
use crate::fetch::BatchItem;
use crate::{Error, ErrorKind, Fetch, Key, Kind, Payload, Record, SecretValue};

/// How upstream answers once a call has passed the gate.
#[derive(Clone, Copy, Default)]
pub enum Pace {
    /// At once.
    #[default]
    Prompt,
    /// After this long (tokio time: instant under a paused clock).
    Slow(Duration),
    /// Never: a connection accepted and never answered.
    Hang,
}

#[derive(Default)]
struct Script {
    values: HashMap<String, String>,
    errors: VecDeque<Error>,
    pace: Pace,
    batch_pace: Option<Pace>,
    /// Ids batch calls leave out of their answer.
    omitted: Vec<String>,
}

/// Answers secrets from a map, fails with queued errors first, counts calls
/// (and the most ever in progress at once), can hold every call at a gate
/// until the test opens it, and can be slow or hang.
#[derive(Clone, Default)]
pub struct Scripted {
    script: Arc<Mutex<Script>>,
    pub calls: Arc<AtomicUsize>,
    pub batch_calls: Arc<AtomicUsize>,
    active: Arc<AtomicUsize>,
    pub most_active: Arc<AtomicUsize>,
    gate: Option<Arc<Semaphore>>,
    no_batch: bool,
    /// Every batch call fails as a whole with this (a throttled call).
    batch_error: Option<ErrorKind>,
}

/// Counts a call in progress until it ends or is dropped (timed out).
struct Active(Arc<AtomicUsize>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Scripted {
    pub fn new() -> Self {
        Self::default()
    }

    /// Refuse batch reads, as a role without `BatchGetSecretValue` would.
    pub fn without_batch(mut self) -> Self {
        self.no_batch = true;
        self
    }

    /// Fail every batch call as a whole with `kind`, as a throttled
    /// `BatchGetSecretValue` does.
    pub fn batch_fails(mut self, kind: ErrorKind) -> Self {
        self.batch_error = Some(kind);
        self
    }

    /// Every fetch (single or batch) waits for a permit from the returned
    /// semaphore.
    pub fn gated(mut self) -> (Self, Arc<Semaphore>) {
        let gate = Arc::new(Semaphore::new(0));
        self.gate = Some(Arc::clone(&gate));
        (self, gate)
    }

    pub fn set(&self, id: &str, value: &str) {
        self.script
            .lock()
            .unwrap()
            .values
            .insert(id.to_owned(), value.to_owned());
    }

    /// Leave `id` out of every batch answer, as a service answering by ARN
    /// an id the fetcher cannot attribute would.
    pub fn omit_from_batches(&self, id: &str) {
        self.script.lock().unwrap().omitted.push(id.to_owned());
    }

    pub fn remove(&self, id: &str) {
        self.script.lock().unwrap().values.remove(id);
    }

    pub fn fail_next(&self, kind: ErrorKind, times: usize) {
        let mut s = self.script.lock().unwrap();
        for _ in 0..times {
            s.errors.push_back(Error::new(kind, "scripted failure"));
        }
    }

    /// Forget the queued failures.
    pub fn clear_failures(&self) {
        self.script.lock().unwrap().errors.clear();
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn batch_calls(&self) -> usize {
        self.batch_calls.load(Ordering::SeqCst)
    }

    /// How every call from now on answers.
    pub fn pace(&self, pace: Pace) {
        self.script.lock().unwrap().pace = pace;
    }

    /// How batch calls from now on answer, apart from single reads.
    pub fn batch_pace(&self, pace: Pace) {
        self.script.lock().unwrap().batch_pace = Some(pace);
    }

    /// Count the call, pass the gate, then take as long as the pace says.
    async fn arrive(&self, calls: &AtomicUsize, batch: bool) -> Active {
        calls.fetch_add(1, Ordering::SeqCst);
        let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_active.fetch_max(now, Ordering::SeqCst);
        let active = Active(Arc::clone(&self.active));
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        let pace = {
            let s = self.script.lock().unwrap();
            if batch {
                s.batch_pace.unwrap_or(s.pace)
            } else {
                s.pace
            }
        };
        match pace {
            Pace::Prompt => {}
            Pace::Slow(d) => tokio::time::sleep(d).await,
            Pace::Hang => std::future::pending::<()>().await,
        }
        active
    }

    fn answer(&self, id: &str) -> Result<Record, Error> {
        let mut s = self.script.lock().unwrap();
        if let Some(e) = s.errors.pop_front() {
            return Err(e);
        }
        match s.values.get(id) {
            Some(v) => Ok(Record::Secret(SecretValue {
                arn: format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{id}-AbCdEf"),
                name: id.to_owned(),
                version_id: format!("v-{}", v.len()),
                payload: Payload::String(Zeroizing::new(v.clone())),
                version_stages: vec!["AWSCURRENT".into()],
                created_date: Some(1.0),
            })),
            None => Err(Error::new(ErrorKind::NotFound, format!("{id} not found"))),
        }
    }
}

impl Fetch for Scripted {
    async fn fetch(&self, key: &Key) -> Result<Record, Error> {
        let _active = self.arrive(&self.calls, false).await;
        self.answer(key.id())
    }

    /// The services' limits: 20 secrets, 10 parameters per batch call.
    fn batch_limit(&self, kind: Kind) -> usize {
        match kind {
            Kind::Secret => 20,
            Kind::Parameter => 10,
        }
    }

    async fn fetch_parameters(
        &self,
        names: &[String],
        _with_decryption: bool,
    ) -> Result<Vec<BatchItem>, Error> {
        self.fetch_batch(names).await
    }

    async fn fetch_batch(&self, ids: &[String]) -> Result<Vec<BatchItem>, Error> {
        let _active = self.arrive(&self.batch_calls, true).await;
        if self.no_batch {
            return Err(Error::new(
                ErrorKind::AccessDenied,
                "no batch for this role",
            ));
        }
        if let Some(kind) = self.batch_error {
            return Err(Error::new(kind, "scripted batch failure"));
        }
        let omitted = self.script.lock().unwrap().omitted.clone();
        Ok(ids
            .iter()
            .filter(|id| !omitted.contains(id))
            .map(|id| (id.clone(), self.answer(id)))
            .collect())
    }
}

/// A clock that only moves when told to. Clones share one time line. As a
/// [`WallClock`] it starts at the system time of its creation; tests give
/// the detector two of them to move the wall clock alone.
#[derive(Clone, Debug)]
pub struct ManualClock {
    base: Instant,
    wall_base: SystemTime,
    offset_nanos: Arc<AtomicU64>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new()
    }
}

impl ManualClock {
    /// A clock frozen at the present instant.
    pub fn new() -> Self {
        Self {
            base: Instant::now(),
            wall_base: SystemTime::now(),
            offset_nanos: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Move time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let nanos = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        self.offset_nanos.fetch_add(nanos, Ordering::SeqCst);
    }
}

impl ManualClock {
    fn offset(&self) -> Duration {
        Duration::from_nanos(self.offset_nanos.load(Ordering::SeqCst))
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + self.offset()
    }
}

impl WallClock for ManualClock {
    fn wall(&self) -> SystemTime {
        self.wall_base + self.offset()
    }
}
