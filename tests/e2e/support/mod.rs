//! Harness for end-to-end tests: a real `ferrokube server` on a free loopback port with a
//! private data dir, and the real kubectl binaries pointed at it with a fresh cache.
//! Every process a test starts is stopped by PID when its guard drops, also on panic.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

#[allow(unused_imports)]
pub use ferrokube_store::testing::{EtcdProcess, free_port};

/// The kubectl versions every machine of the project has.
pub const KUBECTL_DIR: &str = "/usr/lib/google-cloud-sdk/bin";

pub fn ferrokube_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ferrokube"))
}

/// A running `ferrokube server`.
pub struct Server {
    child: Option<Child>,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    pub kubeconfig: PathBuf,
    pub extra_args: Vec<String>,
    log: PathBuf,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
        if std::thread::panicking() {
            eprintln!("---- ferrokube server log ----\n{}", self.log());
        }
    }
}

impl Server {
    /// A server with sqlite in a fresh temporary data dir.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    pub fn start_with(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_path_buf();
        let mut s = Server {
            child: None,
            kubeconfig: dir.join("admin.kubeconfig"),
            log: dir.join("server.log"),
            dir,
            _tmp: Some(tmp),
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.launch();
        s
    }

    fn launch(&mut self) {
        let _ = std::fs::remove_file(&self.kubeconfig);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("server log");
        let child = Command::new(ferrokube_bin())
            .arg("server")
            .arg("--data-dir")
            .arg(&self.dir)
            .args([
                "--bind-address",
                "127.0.0.1",
                "--port",
                "0",
                "--disable-agent",
            ])
            .args(&self.extra_args)
            .env("FERROKUBE_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start ferrokube server");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                panic!("ferrokube server exited with {status}:\n{}", self.log());
            }
            if self.kubeconfig.exists() && self.log().contains("API server ready") {
                let out = self.kubectl("1.33").run(&["get", "--raw", "/readyz"]);
                if out.status.success() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "server not ready within 60s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL, as `kill -9` would: no chance to flush anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the server again on the same data dir.
    pub fn restart(&mut self) {
        self.kill9();
        self.launch();
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// kubectl `1.NN` against this server, with a private HOME and discovery cache.
    pub fn kubectl(&self, version: &str) -> Kubectl {
        Kubectl::new(
            version,
            &self.kubeconfig,
            &self.dir.join(format!("kubectl-home-{version}")),
        )
    }
}

pub struct Kubectl {
    pub bin: PathBuf,
    pub kubeconfig: PathBuf,
    pub home: PathBuf,
}

/// The result of a kubectl run.
pub struct Run {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Kubectl {
    pub fn new(version: &str, kubeconfig: &Path, home: &Path) -> Kubectl {
        let bin = Path::new(KUBECTL_DIR).join(format!("kubectl.{version}"));
        assert!(
            bin.exists(),
            "{} is missing: the e2e tests drive the real kubectl binaries",
            bin.display()
        );
        std::fs::create_dir_all(home).expect("kubectl home");
        Kubectl {
            bin,
            kubeconfig: kubeconfig.to_path_buf(),
            home: home.to_path_buf(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        // The global flag goes first: after a `--` it would be the container's argument.
        c.arg("--cache-dir")
            .arg(self.home.join("cache"))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", &self.home)
            .env_remove("KUBECTL_EXTERNAL_DIFF");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl");
        into_run(out)
    }

    pub fn run_stdin(&self, args: &[&str], stdin: &str) -> Run {
        use std::io::Write;
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run kubectl");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(stdin.as_bytes())
            .expect("write stdin");
        into_run(child.wait_with_output().expect("kubectl output"))
    }

    /// Runs and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(
            r.status.success(),
            "kubectl {} failed:\nstdout: {}\nstderr: {}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        r.stdout
    }

    pub fn ok_stdin(&self, args: &[&str], stdin: &str) -> String {
        let r = self.run_stdin(args, stdin);
        assert!(
            r.status.success(),
            "kubectl {} failed:\nstdout: {}\nstderr: {}",
            args.join(" "),
            r.stdout,
            r.stderr
        );
        r.stdout
    }

    /// Runs and asserts failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let r = self.run(args);
        assert!(
            !r.status.success(),
            "kubectl {} should have failed:\nstdout: {}",
            args.join(" "),
            r.stdout
        );
        r.stderr
    }

    /// Starts a long-running kubectl (e.g. `get -w`) whose stdout goes to a file.
    pub fn spawn(&self, args: &[&str], out: &Path) -> Background {
        let f = std::fs::File::create(out).expect("output file");
        let child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(f)
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn kubectl");
        Background {
            child,
            out: out.to_path_buf(),
        }
    }
}

fn into_run(out: Output) -> Run {
    Run {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A background process killed when dropped.
pub struct Background {
    child: Child,
    out: PathBuf,
}

impl Background {
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits until the output contains `needle` (bounded), returning the output.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let o = self.output();
            if o.contains(needle) || Instant::now() > deadline {
                return o;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `f` until it returns Some, failing the test after `timeout`.
pub fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Test data under tests/e2e/testdata.
pub fn testdata(name: &str) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/e2e/testdata");
    dir.canonicalize()
        .unwrap_or(dir)
        .join(name)
        .display()
        .to_string()
}

/// The lines of a table printed by kubectl, split into cells.
pub fn table(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(String::from).collect())
        .collect()
}
