//! A scripted [`Fetch`] double for the clock-driven unit tests.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;
use zeroize::Zeroizing;

use crate::fetch::BatchItem;
use crate::{Error, ErrorKind, Fetch, Key, Payload, Record, SecretValue};

#[derive(Default)]
struct Script {
    values: HashMap<String, String>,
    errors: VecDeque<Error>,
}

/// Answers secrets from a map, fails with queued errors first, counts calls,
/// and can hold every call at a gate until the test opens it.
#[derive(Clone, Default)]
pub struct Scripted {
    script: Arc<Mutex<Script>>,
    pub calls: Arc<AtomicUsize>,
    pub batch_calls: Arc<AtomicUsize>,
    gate: Option<Arc<Semaphore>>,
    no_batch: bool,
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

    pub fn remove(&self, id: &str) {
        self.script.lock().unwrap().values.remove(id);
    }

    pub fn fail_next(&self, kind: ErrorKind, times: usize) {
        let mut s = self.script.lock().unwrap();
        for _ in 0..times {
            s.errors.push_back(Error::new(kind, "scripted failure"));
        }
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
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
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        self.answer(key.id())
    }

    async fn fetch_batch(&self, ids: &[String]) -> Result<Vec<BatchItem>, Error> {
        self.batch_calls.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        if self.no_batch {
            return Err(Error::new(
                ErrorKind::AccessDenied,
                "no batch for this role",
            ));
        }
        Ok(ids.iter().map(|id| (id.clone(), self.answer(id))).collect())
    }
}
