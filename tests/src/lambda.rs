//! A Lambda execution environment on loopback: the `lambda-simulator`
//! crate's Runtime and Extensions APIs driving the real `sidekey` binary and,
//! optionally, a real function binary as the runtime.
//!
//! The harness spawns the processes itself (with the simulator's Lambda
//! environment variables) so it can capture their output into log files,
//! which the hygiene tests scan for secret values; it registers their pids
//! with the simulator for freeze/thaw.
//!
//! `SIDEKEY_EXTENSION_RUNNER` (say `qemu-aarch64`) prefixes the extension's
//! command line, so the same tests run an arm64 build from `SIDEKEY_BIN_DIR`
//! under qemu-user (scripts/test.sh does).

use std::ffi::OsString;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use lambda_simulator::{FreezeMode, InvocationState, ShutdownReason, Simulator};
use serde_json::Value;

use crate::moto::free_port;
use crate::proxy::Proxy;

/// A workspace binary: in `SIDEKEY_BIN_DIR` if set (the benchmarks point it
/// at `target/release`), else next to the running executable (`target/debug`
/// for the demo) or one level up (`target/debug/deps` for test binaries).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let here = exe.parent().expect("exe dir").to_path_buf();
    let candidates = std::env::var_os("SIDEKEY_BIN_DIR")
        .map(PathBuf::from)
        .into_iter()
        .chain([here.clone()])
        .chain(here.parent().map(Path::to_path_buf));
    for dir in candidates {
        let path = dir.join(name);
        if path.is_file() {
            return path;
        }
    }
    panic!("binary {name} not found near {}: run scripts/test.sh, or `cargo build --workspace --bins` first", here.display());
}

/// The extension's command line: the words of `SIDEKEY_EXTENSION_RUNNER`,
/// if set, then the `sidekey` binary ([`bin`]).
pub fn extension_command() -> Vec<OsString> {
    let runner = std::env::var("SIDEKEY_EXTENSION_RUNNER").unwrap_or_default();
    runner
        .split_whitespace()
        .map(OsString::from)
        .chain([bin("sidekey").into_os_string()])
        .collect()
}

/// [`extension_command`] with `runner`'s words in front instead of
/// `SIDEKEY_EXTENSION_RUNNER`'s, if there are any.
fn extension_command_under(runner: &[String]) -> Vec<OsString> {
    if runner.is_empty() {
        return extension_command();
    }
    runner
        .iter()
        .map(OsString::from)
        .chain([bin("sidekey").into_os_string()])
        .collect()
}

/// A child process whose stdout and stderr go to a log file.
pub struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Spawn `path` with exactly `env` (plus PATH), output to `log`.
    pub fn spawn(path: &Path, env: &[(String, String)], log: PathBuf) -> Process {
        Process::spawn_command(&[path.into()], None, env, log, None)
    }

    /// Spawn `argv` (program, then arguments) in `dir` (else the current
    /// directory) with exactly `env` (plus PATH), output to `log`, with at
    /// most `nofile` open files if given (a shell sets `ulimit -n`, then
    /// `exec`s the program: the pid is the program's).
    pub fn spawn_command(
        argv: &[OsString],
        dir: Option<&Path>,
        env: &[(String, String)],
        log: PathBuf,
        nofile: Option<u64>,
    ) -> Process {
        let (program, args) = argv.split_first().expect("a program to run");
        let out = File::create(&log).expect("create log");
        let err = out.try_clone().expect("clone log");
        let mut command = match nofile {
            None => Command::new(program),
            Some(n) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(program);
                sh
            }
        };
        if let Some(dir) = dir {
            command.current_dir(dir);
        }
        let child = command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {argv:?}: {e}"));
        Process { child, log }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it printed so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it is still running (neither exited nor a zombie).
    pub fn is_running(&self) -> bool {
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .ok()
            .and_then(|stat| {
                let state = stat.get(stat.rfind(')')? + 2..)?.chars().next()?;
                Some(state != 'Z' && state != 'X')
            })
            .unwrap_or(false)
    }

    /// Kill it outright.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Wait up to `timeout` for it to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// How to set up the environment.
#[derive(Default)]
pub struct Options {
    /// `AWS_ENDPOINT_URL` for the extension (moto or a proxy in front of it).
    pub aws_endpoint: String,
    /// Extra environment for the extension.
    pub extension_env: Vec<(String, String)>,
    /// A function binary to run as the runtime, with its extra environment.
    pub runtime: Option<(PathBuf, Vec<(String, String)>)>,
    /// Arguments of the runtime program (an interpreter's: the runtime
    /// interface client and the handler).
    pub runtime_args: Vec<String>,
    /// How many copies of the runtime to start (0 means 1): Lambda Managed
    /// Instances run one Python process per concurrent invocation, each
    /// polling the Runtime API on its own.
    pub runtime_processes: usize,
    /// The runtime's working directory (Lambda's is the task root); the
    /// current one if `None`.
    pub runtime_dir: Option<PathBuf>,
    /// Freeze the processes between invocations (SIGSTOP/SIGCONT).
    pub freeze: bool,
    /// Use the caller's real AWS credentials and endpoints instead of an
    /// emulator (the demo's `--real` mode); `aws_endpoint` is then ignored.
    pub real_aws: bool,
    /// Put a proxy between the extension and the simulator that answers and
    /// records `/extension/init/error` (which the simulator lacks).
    pub record_init_errors: bool,
    /// The extension's port; a free one if `None`. Known in advance, a
    /// caller can watch the port while the extension starts.
    pub port: Option<u16>,
    /// SnapStart's way to credentials: no `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` or `AWS_SESSION_TOKEN`, but
    /// `AWS_CONTAINER_CREDENTIALS_FULL_URI` set to this and
    /// `AWS_CONTAINER_AUTHORIZATION_TOKEN` to the caller token (which the
    /// credentials endpoint also expects in `Authorization`).
    pub container_credentials: Option<String>,
    /// Spawn the extension with at most this many open files (`ulimit -n`).
    pub nofile: Option<u64>,
    /// Put the recording proxy between the extension and the simulator
    /// (as `record_init_errors` does), so [`Lambda::invoke_timed`] sees when
    /// the extension polls `/next`.
    pub watch_events: bool,
    /// Words to run the extension under (a tool: the benchmarks' callgrind),
    /// in place of `SIDEKEY_EXTENSION_RUNNER`'s when not empty.
    pub runner: Vec<String>,
}

impl Options {
    /// An extension alone, reading AWS at `aws_endpoint`, with `env` on top
    /// of the harness's defaults.
    pub fn extension(aws_endpoint: String, env: &[(&str, &str)]) -> Self {
        Options {
            aws_endpoint,
            extension_env: vars(env),
            ..Options::default()
        }
    }
}

impl Options {
    /// The same, with the extension's `/next` polls watched (see
    /// [`Lambda::invoke_timed`]).
    pub fn watching_events(mut self) -> Self {
        self.watch_events = true;
        self
    }
}

/// Environment variables as [`Options`] takes them.
pub fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The session token the harness gives an environment whose extension
/// listens on `port` (callers present it in `X-Aws-Parameters-Secrets-Token`).
pub fn session_token(port: u16) -> String {
    format!("session-token-{port}")
}

/// The Extensions API path of the event long-poll.
pub const NEXT_EVENT_PATH: &str = "/2020-01-01/extension/event/next";

/// The Extensions API path of init errors.
pub const INIT_ERROR_PATH: &str = "/2020-01-01/extension/init/error";

/// A running environment.
pub struct Lambda {
    /// The simulator.
    pub sim: Simulator,
    /// The sidekey extension.
    pub extension: Process,
    /// The function, if one was asked for.
    pub runtime: Option<Process>,
    /// Its further processes ([`Options::runtime_processes`]).
    pub workers: Vec<Process>,
    /// The extension's HTTP port.
    pub port: u16,
    /// The session token callers present.
    pub token: String,
    /// The recording proxy in front of the simulator, if asked for.
    pub front: Option<Proxy>,
    /// When the extension process was spawned.
    pub spawned_at: Instant,
    /// The simulator freezes the processes between invocations.
    freeze: bool,
    _dir: LogDir,
}

/// What an INVOKE cost ([`Lambda::invoke_timed`]).
#[derive(Debug)]
pub struct Invoked {
    /// The invocation's outcome.
    pub state: InvocationState,
    /// The extension polled `/next` after it (within 30 s).
    pub ready: bool,
    /// How long the extension held the INVOKE past the function's answer
    /// (zero if it was done first).
    pub hold: Duration,
    /// From enqueueing the event (Lambda delivers INVOKE to extensions
    /// then) to the extension's next `/next`: with a runtime that answers
    /// at once, the INVOKE's billed time.
    pub until_ready: Duration,
}

/// What a SHUTDOWN did.
#[derive(Debug)]
pub struct Shutdown {
    /// From the SHUTDOWN broadcast to the extension's exit.
    pub elapsed: Duration,
    /// The extension's exit status, if it exited within 5 s.
    pub status: Option<ExitStatus>,
    /// The extension's output.
    pub logs: String,
}

impl Lambda {
    /// Start the simulator, the extension (waiting for it to register, or to
    /// exit), and the runtime if any.
    pub async fn start(options: Options) -> Lambda {
        let mut builder = Simulator::builder()
            .function_name("sidekey-test")
            .shutdown_timeout(Duration::from_secs(2))
            .extension_ready_timeout(Duration::from_secs(5));
        if options.freeze {
            builder = builder.freeze_mode(FreezeMode::Process);
        }
        let sim = builder.build().await.expect("simulator");
        let port = options.port.unwrap_or_else(free_port);
        let token = session_token(port);
        let dir = std::env::temp_dir().join(format!("sidekey-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("log dir");

        let mut env: Vec<(String, String)> = sim.lambda_env_vars().into_iter().collect();
        let front = match options.record_init_errors || options.watch_events {
            true => {
                let front = Proxy::start(sim.addr()).await;
                front.stub(INIT_ERROR_PATH, 202);
                Some(front)
            }
            false => None,
        };
        let token = if options.real_aws {
            // In Lambda the caller token is the session token; with long-term
            // keys there is none, so use the container token variable.
            for (k, v) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_") || k == "HOME") {
                if k != "AWS_LAMBDA_RUNTIME_API" && k != "AWS_ENDPOINT_URL" {
                    env.push((k, v));
                }
            }
            match std::env::var("AWS_SESSION_TOKEN") {
                Ok(t) => t,
                Err(_) => {
                    env.push(("AWS_CONTAINER_AUTHORIZATION_TOKEN".into(), token.clone()));
                    token
                }
            }
        } else {
            let emulated = [
                ("AWS_REGION", "us-east-1"),
                ("AWS_EC2_METADATA_DISABLED", "true"),
                ("AWS_CONFIG_FILE", "/dev/null"),
                ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ];
            env.extend(emulated.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            match &options.container_credentials {
                None => {
                    env.push(("AWS_ACCESS_KEY_ID".into(), "test".into()));
                    env.push(("AWS_SECRET_ACCESS_KEY".into(), "test".into()));
                    env.push(("AWS_SESSION_TOKEN".into(), token.clone()));
                }
                Some(uri) => {
                    env.push(("AWS_CONTAINER_CREDENTIALS_FULL_URI".into(), uri.clone()));
                    env.push(("AWS_CONTAINER_AUTHORIZATION_TOKEN".into(), token.clone()));
                }
            }
            env.push(("AWS_ENDPOINT_URL".into(), options.aws_endpoint.clone()));
            token
        };
        env.push((
            "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT".into(),
            port.to_string(),
        ));
        env.push((
            "PARAMETERS_SECRETS_EXTENSION_LOG_LEVEL".into(),
            "debug".into(),
        ));
        let mut ext_env = env.clone();
        if let Some(front) = &front {
            ext_env.retain(|(k, _)| k != "AWS_LAMBDA_RUNTIME_API");
            ext_env.push(("AWS_LAMBDA_RUNTIME_API".into(), front.host_port()));
        }
        ext_env.extend(options.extension_env.iter().cloned());
        let spawned_at = Instant::now();
        let mut extension = Process::spawn_command(
            &extension_command_under(&options.runner),
            None,
            &ext_env,
            dir.join("sidekey.log"),
            options.nofile,
        );
        if options.freeze {
            sim.register_freeze_pid(extension.pid());
        }
        let registered = sim
            .wait_for(
                || async { sim.extension_count().await >= 1 },
                Duration::from_secs(10),
            )
            .await;
        if registered.is_err() && extension.wait_timeout(Duration::from_millis(10)).is_none() {
            panic!("sidekey did not register: {}", extension.logs());
        }

        let mut processes: Vec<Process> = match &options.runtime {
            None => Vec::new(),
            Some((path, extra)) => (0..options.runtime_processes.max(1))
                .map(|i| {
                    let mut rt_env = env.clone();
                    rt_env.extend(extra.iter().cloned());
                    let argv: Vec<OsString> = std::iter::once(path.into())
                        .chain(options.runtime_args.iter().map(OsString::from))
                        .collect();
                    let log = match i {
                        0 => dir.join("runtime.log"),
                        i => dir.join(format!("runtime-{i}.log")),
                    };
                    let p = Process::spawn_command(
                        &argv,
                        options.runtime_dir.as_deref(),
                        &rt_env,
                        log,
                        None,
                    );
                    if options.freeze {
                        sim.register_freeze_pid(p.pid());
                    }
                    p
                })
                .collect(),
        };
        let workers = processes.split_off(processes.len().min(1));
        let runtime = processes.pop();
        Lambda {
            sim,
            extension,
            runtime,
            workers,
            port,
            token,
            front,
            spawned_at,
            freeze: options.freeze,
            _dir: LogDir(dir),
        }
    }

    /// Whether the extension process is still running.
    pub fn extension_alive(&self) -> bool {
        self.extension.is_running()
    }

    /// `http://127.0.0.1:PORT` of the extension.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Invoke the function with `payload` and wait for the outcome.
    ///
    /// With `freeze`, also wait for the environment to be frozen after it
    /// (the processes stopped), as Lambda finishes one invocation before it
    /// sends the next. Without this, an event enqueued at once can meet
    /// lambda-simulator 0.2.0's freeze races: its thaw can come before the
    /// freeze's SIGSTOP, which then leaves the new invocation stopped for
    /// good (seen in CI). The simulator freezes at the latest after its
    /// extension-ready timeout (5 s here).
    pub async fn invoke(&self, payload: Value) -> InvocationState {
        let id = self.sim.enqueue_payload(payload).await;
        let state = self
            .sim
            .wait_for_invocation_complete(&id, Duration::from_secs(20))
            .await
            .unwrap_or_else(|e| panic!("invocation completes: {e:?}; logs:\n{}", self.logs()));
        if self.freeze {
            self.sim
                .wait_for_frozen(Duration::from_secs(20))
                .await
                .expect("the environment freezes after the invocation");
            // The simulator says "frozen" before it sends SIGSTOP: a thaw
            // in between sends SIGCONT first and the late SIGSTOP leaves
            // the processes stopped for good (seen under a loaded CI
            // machine). Wait until the kernel shows them stopped.
            let pids: Vec<u32> = std::iter::once(self.extension.pid())
                .chain(self.runtime.as_ref().map(Process::pid))
                .collect();
            let deadline = Instant::now() + Duration::from_secs(20);
            let stopped =
                |pid: u32| crate::client::stat_fields(pid).first().map(String::as_str) == Some("T");
            while !pids.iter().all(|&pid| stopped(pid)) {
                assert!(Instant::now() < deadline, "the environment never stopped");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        state
    }

    /// Invoke with `payload` and wait, up to 30 s each, for the invocation
    /// to complete and for the extension to be done with it: to poll
    /// `/next` again, as seen by the front proxy (`watch_events`). The
    /// simulator's own readiness tracking is not used: in lambda-simulator
    /// 0.2.0 an extension poll that races the runtime's response is never
    /// counted (`mark_extension_ready` reads the current and last request
    /// before `mark_runtime_done` updates them), and a runtime that answers
    /// at once meets that race.
    pub async fn invoke_timed(&self, payload: Value) -> Invoked {
        let front = self
            .front
            .as_ref()
            .expect("invoke_timed needs Options::watch_events");
        let polls = front.arrivals(NEXT_EVENT_PATH).len();
        let enqueued = Instant::now();
        let id = self.sim.enqueue_payload(payload).await;
        let state = self
            .sim
            .wait_for_invocation_complete(&id, Duration::from_secs(30))
            .await
            .expect("invocation completes");
        let ready_at = loop {
            if let Some(at) = front.arrivals(NEXT_EVENT_PATH).get(polls) {
                break Some(*at);
            }
            if enqueued.elapsed() > Duration::from_secs(30) {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        let until_ready = ready_at.map_or(enqueued.elapsed(), |at| at - enqueued);
        let function = state
            .response
            .as_ref()
            .and_then(|r| (r.received_at - state.invocation.created_at).to_std().ok())
            .unwrap_or_default();
        Invoked {
            state,
            ready: ready_at.is_some(),
            hold: until_ready.saturating_sub(function),
            until_ready,
        }
    }

    /// Everything the extension and the function printed so far.
    pub fn logs(&self) -> String {
        let mut all = self.extension.logs();
        for rt in self.runtime.iter().chain(&self.workers) {
            all.push_str(&rt.logs());
        }
        all
    }

    /// Send SHUTDOWN and time the extension's exit.
    pub async fn shutdown(self) -> Shutdown {
        let Lambda {
            sim,
            mut extension,
            runtime,
            _dir,
            ..
        } = self;
        let started = Instant::now();
        let wait = tokio::task::spawn_blocking(move || {
            let status = extension.wait_timeout(Duration::from_secs(5));
            (status, started.elapsed(), extension)
        });
        sim.graceful_shutdown(ShutdownReason::Spindown).await;
        let (status, elapsed, extension) = wait.await.expect("wait for exit");
        let logs = extension.logs();
        drop(runtime);
        drop(extension);
        Shutdown {
            elapsed,
            status,
            logs,
        }
    }
}

/// The folder of the logs; removed when the environment goes.
struct LogDir(PathBuf);

impl Drop for LogDir {
    /// Scan every log for seeded secret values, then remove them.
    /// A leaking log is kept on disk for inspection (the panic comes first).
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let logs = std::fs::read_dir(&self.0).into_iter().flatten().flatten();
            for path in logs.map(|e| e.path()) {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                crate::hygiene::assert_clean(&text, &path.display().to_string());
            }
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
