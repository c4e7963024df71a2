/*!
`sidekey_edge`: the Lambda@Edge viewer-request function as a Python
extension module.

Lambda@Edge runs Node.js and Python only (no custom runtimes, no layers, no
extensions, no environment variables of our own), so the Rust handler of
the `sidekey-edge` crate (`edge/src`) ships as this module under a few-line
Python handler (`handler.py`, beside this crate):

* `configure(config_path)` — once, at import: read the bundled
  `config.json`, the credentials Lambda puts in the environment, and
  `AWS_REGION`; build the handler. Raises `ValueError` (bad config) or
  `RuntimeError` (no credentials, no CA store): the function fails its init,
  loudly, instead of answering wrongly.
* `handle(event_json) -> str` — per invocation: the reply as JSON (the
  request to let through, or a 502/503 response). Never raises for a bad
  event or an upstream failure: those are replies (see the handler's table).
* `metrics() -> str` — the cache's counters as JSON.

Logs (the handler's answers, a replica read falling back to the primary)
go to stderr through `tracing`, which Lambda sends to CloudWatch Logs in the
region of the edge location that ran the function.

The handler, its cache and its current-thread tokio runtime live in one
process-wide global, so an environment's invocations share one cached key
and one connection pool: one Secrets Manager call per TTL, not per request.
The runtime only runs inside `handle` (the environment is frozen between
invocations anyway), which also lets a refresh-ahead started by one
invocation finish during the next.
*/
#![warn(missing_docs)]

use std::sync::OnceLock;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use sidekey_edge::{self as edge, Credentials, EdgeConfig, EdgeHandler, Reply};
use zeroize::Zeroizing;

/// The configured function: built once per process.
struct Edge {
    runtime: tokio::runtime::Runtime,
    handler: EdgeHandler,
}

static EDGE: OnceLock<Edge> = OnceLock::new();

/// Why `configure` failed. Names variables and files, never their values.
#[derive(Debug, thiserror::Error)]
enum InitError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Config(#[from] edge::ConfigError),
    #[error("environment variable {0} is not set")]
    MissingEnv(&'static str),
    #[error("tokio runtime: {0}")]
    Runtime(std::io::Error),
    #[error(transparent)]
    Build(#[from] edge::BuildError),
}

impl From<InitError> for PyErr {
    fn from(e: InitError) -> PyErr {
        match e {
            InitError::Config(_) | InitError::Read { .. } => PyValueError::new_err(e.to_string()),
            _ => PyRuntimeError::new_err(e.to_string()),
        }
    }
}

/// What the module reads from the process environment, read once here and
/// passed down: the crates below never look at the environment.
struct Environment {
    credentials: Credentials,
    region: Option<String>,
}

impl Environment {
    fn from_env() -> Result<Self, InitError> {
        let var = |name| std::env::var(name).ok().filter(|v| !v.is_empty());
        let access_key_id =
            var("AWS_ACCESS_KEY_ID").ok_or(InitError::MissingEnv("AWS_ACCESS_KEY_ID"))?;
        let secret = var("AWS_SECRET_ACCESS_KEY")
            .map(Zeroizing::new)
            .ok_or(InitError::MissingEnv("AWS_SECRET_ACCESS_KEY"))?;
        let token = var("AWS_SESSION_TOKEN").map(Zeroizing::new);
        Ok(Self {
            credentials: Credentials::new(access_key_id, secret, token),
            region: var("AWS_REGION"),
        })
    }
}

fn init(config_path: &str) -> Result<Edge, InitError> {
    init_logging();
    let text = std::fs::read_to_string(config_path).map_err(|source| InitError::Read {
        path: config_path.to_owned(),
        source,
    })?;
    let config = EdgeConfig::from_json(&text)?;
    let env = Environment::from_env()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(InitError::Runtime)?;
    // The client's pool and the cache spawn onto the runtime they are
    // built in.
    let handler = {
        let _guard = runtime.enter();
        edge::build(&config, env.credentials, env.region.as_deref())?
    };
    Ok(Edge { runtime, handler })
}

/// Send `tracing` events to stderr, without ANSI colours (CloudWatch shows
/// them raw) or timestamps (CloudWatch stamps every line). Once per
/// process: a second subscriber is refused and ignored.
fn init_logging() {
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_max_level(tracing::Level::INFO)
        .try_init();
}

/// Read `config_path` and the environment, and build the handler. Once per
/// process: later calls (a re-import) keep the first configuration.
#[pyfunction]
fn configure(py: Python<'_>, config_path: &str) -> PyResult<()> {
    if EDGE.get().is_some() {
        return Ok(());
    }
    let built = py.detach(|| init(config_path))?;
    // A concurrent first call may have won; either configuration is the
    // same file's.
    let _ = EDGE.set(built);
    Ok(())
}

/// Handle one viewer-request event (JSON text); the reply as JSON text.
#[pyfunction]
fn handle(py: Python<'_>, event_json: &str) -> PyResult<String> {
    let edge = EDGE
        .get()
        .ok_or_else(|| PyRuntimeError::new_err("sidekey_edge.configure was not called"))?;
    let result = py.detach(|| edge.runtime.block_on(edge.handler.handle(event_json)));
    if let Err(e) = &result {
        // EdgeError's text never holds the key nor the viewer's data.
        tracing::warn!(status = e.status(), error = %e, "answered the viewer");
    }
    serde_json::to_string(&Reply::from(result))
        .map_err(|e| PyRuntimeError::new_err(format!("cannot serialize the reply: {e}")))
}

/// The embedded cache's counters, as JSON.
#[pyfunction]
fn metrics() -> PyResult<String> {
    let edge = EDGE
        .get()
        .ok_or_else(|| PyRuntimeError::new_err("sidekey_edge.configure was not called"))?;
    serde_json::to_string(&edge.handler.source().cache().metrics())
        .map_err(|e| PyRuntimeError::new_err(e.to_string()))
}

/// The Python module.
#[pymodule(name = "sidekey_edge")]
fn sidekey_edge_module(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(configure, m)?)?;
    m.add_function(wrap_pyfunction!(handle, m)?)?;
    m.add_function(wrap_pyfunction!(metrics, m)?)?;
    Ok(())
}
