//! A real standalone ZooKeeper server on a free loopback port, for tests and benchmarks of
//! the zookeeper controller.
//!
//! Its jars come from `scripts/provision-zookeeper.sh` (which finds an installed ZooKeeper or
//! installs Debian's `zookeeper` package); `java` must be on `PATH` (or named by `$JAVA`). If
//! the server cannot be provisioned or started, [`ZooKeeper::start`] fails with an error
//! holding the server's log: callers fail loudly, they never skip.
//!
//! ```no_run
//! # fn demo() -> Result<(), anvil_testenv::TestEnvError> {
//! let zk = anvil_testenv::ZooKeeper::start()?;
//! println!("connect to {}", zk.address());
//! # Ok(()) }
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use std::time::{Duration, Instant};

use crate::error::{Result, TestEnvError};
use crate::{free_port, process, provision};

const SCRIPT: &str = "scripts/provision-zookeeper.sh";
/// How long to wait for the server to answer `ruok`.
const ZK_STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// A running standalone ZooKeeper server (`127.0.0.1:<port>`), with its own data directory.
/// It is killed and its directory removed on drop.
#[derive(Debug)]
pub struct ZooKeeper {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

fn provision_home() -> Result<PathBuf> {
    let candidates = provision::script_candidates_for(SCRIPT);
    let script = candidates.iter().find(|p| p.is_file()).ok_or_else(|| {
        TestEnvError::Provision(format!(
            "{SCRIPT} not found (looked at: {})",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))
    })?;
    let out = Command::new("bash")
        .arg(script)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| TestEnvError::io(format!("cannot run {}", script.display()), e))?;
    if !out.status.success() {
        return Err(TestEnvError::Provision(format!(
            "{} failed ({}): no ZooKeeper server available; install Debian's zookeeper package \
             or set ZOOKEEPER_HOME",
            script.display(),
            out.status
        )));
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .ok_or_else(|| TestEnvError::Provision(format!("{} printed nothing", script.display())))?;
    Ok(PathBuf::from(dir))
}

fn classpath(dir: &Path) -> String {
    // Debian: /usr/share/java/zookeeper.jar (its manifest names its dependencies).
    // A release tarball: <home>/lib/*.jar.
    let jar = dir.join("zookeeper.jar");
    if jar.exists() {
        return jar.display().to_string();
    }
    let mut parts = vec![format!("{}/*", dir.display())];
    if dir.join("lib").is_dir() {
        parts.push(format!("{}/lib/*", dir.display()));
    }
    parts.join(":")
}

/// Sends a four-letter command (`ruok`, `srvr`, ...) and returns the answer.
fn four_letter(port: u16, word: &str) -> Option<String> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

impl ZooKeeper {
    /// Provisions ZooKeeper if needed, starts a standalone server on a free loopback port and
    /// waits (at most 60 s) until it answers `ruok`. Blocks the calling thread.
    pub fn start() -> Result<ZooKeeper> {
        let home = provision_home()?;
        let java = std::env::var("JAVA").unwrap_or_else(|_| "java".into());
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let port = free_port()?;
            let dir = tempfile::Builder::new()
                .prefix("anvil-zookeeper-")
                .tempdir()
                .map_err(|e| TestEnvError::io("cannot create a temporary directory", e))?;
            let data = dir.path().join("data");
            std::fs::create_dir_all(&data)
                .map_err(|e| TestEnvError::io("cannot create ZooKeeper's data dir", e))?;
            let cfg = dir.path().join("zoo.cfg");
            crate::write(
                &cfg,
                &format!(
                    "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                     admin.enableServer=false\n4lw.commands.whitelist=ruok,srvr,stat\n\
                     maxClientCnxns=0\n",
                    data.display()
                ),
            )?;
            let log_path = dir.path().join("server.log");
            // From the spawner thread: the server dies with the test process.
            let child = process::spawn(
                Path::new(&java),
                vec![
                    "-Xmx256m".into(),
                    "-cp".into(),
                    classpath(&home),
                    "org.apache.zookeeper.server.ZooKeeperServerMain".into(),
                    cfg.display().to_string(),
                ],
                &log_path,
                false,
            )?;
            let mut server = ZooKeeper { child, port, dir };
            let deadline = Instant::now() + ZK_STARTUP_TIMEOUT;
            while Instant::now() < deadline {
                if four_letter(port, "ruok").as_deref() == Some("imok") {
                    return Ok(server);
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    break; // exited (e.g. the port was taken meanwhile): retry on another port
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
        }
        Err(TestEnvError::Startup {
            message: format!(
                "the ZooKeeper server did not start (classpath from {})",
                home.display()
            ),
            logs: last_log,
        })
    }

    /// The client connect string, `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // `self.dir` (a TempDir) is removed when the fields drop.
    }
}
