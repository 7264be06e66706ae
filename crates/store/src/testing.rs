//! Test support: a real etcd on loopback ports for tests that need one (the store's conformance
//! suite and the end-to-end tests). Not used by the server itself.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

/// Where Debian's `etcd-server` installs etcd.
pub const ETCD: &str = "/usr/bin/etcd";

/// A real etcd on free loopback ports with a private data dir, killed (by PID) when dropped,
/// also when the test panics.
pub struct EtcdProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub endpoint: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for EtcdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free loopback port")
        .port()
}

impl EtcdProcess {
    /// Starts etcd. Panics with the package to install when the binary is missing: tests that
    /// need etcd must fail, never pass without it.
    pub fn start() -> EtcdProcess {
        assert!(
            Path::new(ETCD).exists(),
            "{ETCD} is missing: this test needs a real etcd; install it with `apt-get install etcd-server`"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let (client, peer) = (free_port(), free_port());
        let client_url = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let log = dir.path().join("etcd.log");
        let log_file = std::fs::File::create(&log).expect("etcd log file");
        let child = Command::new(ETCD)
            .arg("--name=default")
            .arg(format!("--data-dir={}", dir.path().join("data").display()))
            .arg(format!("--listen-client-urls={client_url}"))
            .arg(format!("--advertise-client-urls={client_url}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=default={peer_url}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("start etcd");
        EtcdProcess {
            child,
            endpoint: client_url,
            log,
            _dir: dir,
        }
    }

    /// `etcd://127.0.0.1:PORT`, as `--datastore-endpoint` takes it.
    pub fn datastore_endpoint(&self) -> String {
        self.endpoint.replacen("http://", "etcd://", 1)
    }

    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
