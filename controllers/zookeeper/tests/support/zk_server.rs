//! A standalone ZooKeeper server on a free loopback port, with its own data dir and config,
//! for tests. It is found (or installed) by `scripts/provision-zookeeper.sh`; a test that
//! cannot start it fails loudly. The server is killed and its folder removed on drop.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running standalone ZooKeeper server.
pub struct ZkServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

fn provision() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/provision-zookeeper.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed ({}): no ZooKeeper server available",
        script.display(),
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("{} printed nothing", script.display()))
        .trim();
    PathBuf::from(dir)
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

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("no free loopback port")
        .port()
}

fn four_letter(port: u16, word: &str) -> Option<String> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_millis(500),
    )
    .ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    s.write_all(word.as_bytes()).ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

impl ZkServer {
    /// Starts a server and waits until it answers `ruok`; panics (with the server's log) when
    /// it cannot be started.
    pub fn start() -> ZkServer {
        let home = provision();
        let java = std::env::var("JAVA").unwrap_or_else(|_| "java".into());
        let mut last_log = String::new();
        for _attempt in 0..3 {
            let port = free_port();
            let dir = std::env::temp_dir().join(format!("anvil-zk-{}-{port}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("data")).expect("create ZooKeeper data dir");
            let cfg = dir.join("zoo.cfg");
            std::fs::write(
                &cfg,
                format!(
                    "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
                     admin.enableServer=false\n4lw.commands.whitelist=ruok,srvr,stat\n\
                     maxClientCnxns=0\n",
                    dir.join("data").display()
                ),
            )
            .expect("write zoo.cfg");
            let log = std::fs::File::create(dir.join("server.log")).expect("create server log");
            let child = Command::new(&java)
                .arg("-Xmx256m")
                .arg("-cp")
                .arg(classpath(&home))
                .arg("org.apache.zookeeper.server.ZooKeeperServerMain")
                .arg(&cfg)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {java}: {e}"));
            let mut server = ZkServer { child, port, dir };
            let deadline = Instant::now() + Duration::from_secs(60);
            while Instant::now() < deadline {
                if four_letter(port, "ruok").as_deref() == Some("imok") {
                    return server;
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    break; // exited (e.g. the port was taken meanwhile): retry on another port
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            last_log = std::fs::read_to_string(server.dir.join("server.log")).unwrap_or_default();
            drop(server);
        }
        panic!(
            "the ZooKeeper server did not start (classpath from {}):\n{last_log}",
            home.display()
        );
    }

    /// The client connect string, `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for ZkServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
