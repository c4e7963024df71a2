//! moto's server as a child process on a free loopback port.
//!
//! The test command installs moto into a virtualenv and exports
//! `SIDEKEY_MOTO_SERVER` with the path of its `moto_server`; without it the
//! harness looks for `moto_server` on `PATH`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server. Killed on drop.
pub struct Moto {
    child: Option<Child>,
    addr: SocketAddr,
}

impl Moto {
    /// Start moto on a free port and wait until it answers.
    pub fn start() -> Moto {
        for _ in 0..5 {
            let port = free_port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut moto = Moto { child: None, addr };
            if moto.spawn() {
                return moto;
            }
        }
        panic!("moto_server did not start (is moto installed? run the README's test command)");
    }

    fn spawn(&mut self) -> bool {
        let bin = std::env::var("SIDEKEY_MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &self.addr.port().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.healthy() {
                self.warm_up();
                return true;
            }
            if let Some(Ok(Some(_))) = self.child.as_mut().map(Child::try_wait) {
                return false; // exited: port taken, most likely
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
        false
    }

    fn healthy(&self) -> bool {
        let Ok(mut s) = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let req = format!(
            "GET /moto-api/ HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        );
        if s.write_all(req.as_bytes()).is_err() {
            return false;
        }
        let mut buf = [0u8; 12];
        s.read_exact(&mut buf).is_ok() && buf.starts_with(b"HTTP/1.")
    }

    /// Make moto load its Parameter Store backend now: its first SSM call
    /// takes 1.4 s on an idle machine (it loads AWS's public parameters),
    /// more on a loaded one, which would otherwise eat into the extension's
    /// 2 s read deadline in whichever test reads a parameter first.
    fn warm_up(&self) {
        let Ok(mut s) = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)) else {
            return;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
        let body = r#"{"Name":"/sidekey/warm-up"}"#;
        let req = format!(
            "POST / HTTP/1.1\r\nHost: {}\r\nX-Amz-Target: AmazonSSM.GetParameter\r\n\
             Content-Type: application/x-amz-json-1.1\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ssm/aws4_request, SignedHeaders=host, Signature=0\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        );
        if s.write_all(req.as_bytes()).is_ok() {
            let mut buf = [0u8; 12];
            let _ = s.read_exact(&mut buf);
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Kill the server outright (an outage). Its state is lost.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port (empty, as after a real restart).
    pub fn restart(&mut self) {
        self.kill();
        for _ in 0..50 {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("moto did not restart on {}", self.addr);
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind 127.0.0.1:0")
}
