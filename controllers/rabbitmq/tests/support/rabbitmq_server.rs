//! A real RabbitMQ node on loopback, configured with the files the controller generated, for
//! tests. RabbitMQ is found (or installed) by `scripts/provision-rabbitmq.sh`; a test that
//! cannot start it fails loudly, with the command that provisions it and the node's log.
//!
//! The node gets its own folder (mnesia, logs, plugins expansion, `HOME` with the generated
//! `.erlang.cookie`), free loopback ports for AMQP, management, Prometheus and Erlang
//! distribution, and a unique node name; `epmd` is started by the node as usual (or reused
//! when one runs). The configuration is the controller's, written as the pods read it:
//!
//! * `rabbitmq.conf` (`RABBITMQ_CONFIG_FILE`) = `operatorDefaults.conf`, then the default
//!   user's `default_user.conf`, then `userDefinedConfiguration.conf` (the order of the pods'
//!   `conf.d`: `10-`, `11-`, `90-`), then a **loopback overlay** that only a node outside
//!   Kubernetes needs: `cluster_formation.peer_discovery_backend = classic_config` (the k8s
//!   backend needs the Kubernetes API from inside a pod) and the listeners' ports and address;
//! * `advanced.config` (`RABBITMQ_ADVANCED_CONFIG_FILE`) and `rabbitmq-env.conf`
//!   (`RABBITMQ_CONF_ENV_FILE`) when the ConfigMap has them;
//! * `enabled_plugins` (`RABBITMQ_ENABLED_PLUGINS_FILE`) from the plugins ConfigMap.
//!
//! The node runs in its own session (`setsid`); its whole process group is killed on drop and
//! its folder removed.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The files of a node, as the controller generated them.
#[derive(Clone, Debug, Default)]
pub struct NodeConfig {
    /// `operatorDefaults.conf` of the server-conf ConfigMap.
    pub operator_defaults: String,
    /// `userDefinedConfiguration.conf` of the server-conf ConfigMap.
    pub user_defined: String,
    /// `advanced.config` of the server-conf ConfigMap, if any.
    pub advanced_config: Option<String>,
    /// `rabbitmq-env.conf` of the server-conf ConfigMap, if any.
    pub env_conf: Option<String>,
    /// `default_user.conf` of the default-user Secret.
    pub default_user_conf: String,
    /// `enabled_plugins` of the plugins ConfigMap.
    pub enabled_plugins: String,
    /// The Erlang cookie of the cookie Secret.
    pub erlang_cookie: String,
}

/// A running RabbitMQ node.
pub struct RabbitmqNode {
    child: Child,
    dir: PathBuf,
    /// AMQP port.
    pub amqp_port: u16,
    /// Management (HTTP API) port.
    pub management_port: u16,
}

const PROVISION: &str = "scripts/provision-rabbitmq.sh";

fn provision() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(PROVISION);
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed ({}): no RabbitMQ server available; provision it with `{PROVISION}` \
         (Debian's rabbitmq-server package)",
        script.display(),
        out.status
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let dir = stdout
        .lines()
        .last()
        .unwrap_or_else(|| panic!("{} printed nothing", script.display()))
        .trim();
    let dir = PathBuf::from(dir);
    assert!(
        dir.join("rabbitmq-server").exists(),
        "{PROVISION} named {}, which has no rabbitmq-server",
        dir.display()
    );
    dir
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("no free loopback port")
        .port()
}

/// The AMQP 0-9-1 protocol header.
pub const AMQP_HEADER: &[u8] = b"AMQP\x00\x00\x09\x01";

/// Connects to `port`, sends the AMQP 0-9-1 protocol header and reads the server's first
/// frame: `Ok` when it is a `connection.start` method frame (type 1, channel 0, class 10,
/// method 10), with the server properties' text for logs.
pub fn amqp_handshake(port: u16) -> Result<String, String> {
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_millis(500),
    )
    .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .map_err(|e| e.to_string())?;
    s.write_all(AMQP_HEADER)
        .map_err(|e| format!("write: {e}"))?;
    let mut head = [0u8; 11];
    s.read_exact(&mut head).map_err(|e| format!("read: {e}"))?;
    let frame_type = head[0];
    let channel = u16::from_be_bytes([head[1], head[2]]);
    let size = u32::from_be_bytes([head[3], head[4], head[5], head[6]]) as usize;
    let class = u16::from_be_bytes([head[7], head[8]]);
    let method = u16::from_be_bytes([head[9], head[10]]);
    if (frame_type, channel, class, method) != (1, 0, 10, 10) {
        return Err(format!(
            "not a connection.start frame: type {frame_type} channel {channel} class {class} method {method}"
        ));
    }
    let mut body = vec![0u8; size.saturating_sub(4).min(64 * 1024)];
    let _ = s.read_exact(&mut body);
    Ok(String::from_utf8_lossy(&body)
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .collect())
}

/// An HTTP GET of `path` on the management API with basic authentication: (status, body).
pub fn management_get(
    port: u16,
    path: &str,
    user: &str,
    password: &str,
) -> Result<(u16, String), String> {
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let mut s = TcpStream::connect_timeout(
        &format!("127.0.0.1:{port}").parse().unwrap(),
        Duration::from_millis(500),
    )
    .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Basic {auth}\r\n\
         Accept: application/json\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| format!("read: {e}"))?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("no HTTP status in {out:?}"))?;
    let body = out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string();
    Ok((status, body))
}

impl RabbitmqNode {
    /// Starts a node with `config` and waits until it accepts an AMQP connection; panics
    /// (with the node's log) when it cannot be started.
    pub fn start(config: &NodeConfig) -> RabbitmqNode {
        let sbin = provision();
        let mut last_log = String::new();
        for _attempt in 0..2 {
            let (amqp, management, prometheus, dist) =
                (free_port(), free_port(), free_port(), free_port());
            let dir =
                std::env::temp_dir().join(format!("anvil-rabbitmq-{}-{amqp}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            for sub in ["home", "mnesia", "log", "plugins-expand"] {
                std::fs::create_dir_all(dir.join(sub)).expect("create the node's folder");
            }
            let conf = format!(
                "{}\n{}\n{}\n\
                 # loopback overlay (the test node runs outside Kubernetes)\n\
                 cluster_formation.peer_discovery_backend = classic_config\n\
                 listeners.tcp.1 = 127.0.0.1:{amqp}\n\
                 management.tcp.ip = 127.0.0.1\n\
                 management.tcp.port = {management}\n\
                 prometheus.tcp.ip = 127.0.0.1\n\
                 prometheus.tcp.port = {prometheus}\n",
                config.operator_defaults, config.default_user_conf, config.user_defined
            );
            std::fs::write(dir.join("rabbitmq.conf"), conf).expect("write rabbitmq.conf");
            std::fs::write(dir.join("enabled_plugins"), &config.enabled_plugins)
                .expect("write enabled_plugins");
            if let Some(a) = &config.advanced_config {
                std::fs::write(dir.join("advanced.config"), a).expect("write advanced.config");
            }
            if let Some(e) = &config.env_conf {
                std::fs::write(dir.join("rabbitmq-env.conf"), e).expect("write rabbitmq-env.conf");
            }
            let cookie = dir.join("home/.erlang.cookie");
            std::fs::write(&cookie, &config.erlang_cookie).expect("write the cookie");
            std::fs::set_permissions(&cookie, std::fs::Permissions::from_mode(0o400))
                .expect("chmod the cookie");
            let log = std::fs::File::create(dir.join("node.log")).expect("create the node log");
            let node = format!("rabbit-anvil-{amqp}@localhost");
            // `setsid`: the node gets its own session and process group, without a
            // controlling terminal (an Erlang VM with a terminal may take it over)
            let child = Command::new("setsid")
                .arg(sbin.join("rabbitmq-server"))
                .env("HOME", dir.join("home"))
                .env("RABBITMQ_NODENAME", &node)
                .env("RABBITMQ_USE_LONGNAME", "false")
                .env("RABBITMQ_CONFIG_FILE", dir.join("rabbitmq.conf"))
                .env("RABBITMQ_ADVANCED_CONFIG_FILE", dir.join("advanced.config"))
                .env("RABBITMQ_CONF_ENV_FILE", dir.join("rabbitmq-env.conf"))
                .env("RABBITMQ_ENABLED_PLUGINS_FILE", dir.join("enabled_plugins"))
                .env("RABBITMQ_MNESIA_BASE", dir.join("mnesia"))
                .env("RABBITMQ_LOG_BASE", dir.join("log"))
                .env("RABBITMQ_LOGS", "-")
                .env("RABBITMQ_PLUGINS_EXPAND_DIR", dir.join("plugins-expand"))
                .env("RABBITMQ_PID_FILE", dir.join("node.pid"))
                .env("RABBITMQ_NODE_PORT", amqp.to_string())
                .env("RABBITMQ_DIST_PORT", dist.to_string())
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {}: {e}", sbin.display()));
            let mut server = RabbitmqNode {
                child,
                dir,
                amqp_port: amqp,
                management_port: management,
            };
            let deadline = Instant::now() + Duration::from_secs(120);
            while Instant::now() < deadline {
                if amqp_handshake(amqp).is_ok() {
                    return server;
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    break; // exited (e.g. a port was taken meanwhile): retry on other ports
                }
                std::thread::sleep(Duration::from_millis(250));
            }
            last_log = server.log();
            drop(server);
        }
        panic!(
            "the RabbitMQ node did not start (from {}; provision with `{PROVISION}`):\n{last_log}",
            sbin.display()
        );
    }

    /// The node's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// The node's log once it contains `needle`, or as it is after `timeout`. The node
    /// serves AMQP and HTTP while it still starts its last plugins, so a line written at
    /// the end of the boot can follow the first successful request.
    pub fn log_once_it_contains(&self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.contains(needle) || Instant::now() >= deadline {
                return log;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for RabbitmqNode {
    fn drop(&mut self) {
        // the node runs in its own session and process group (`setsid`, then the script,
        // erl, beam and its port programs): kill that group, then reap the child
        // (`killpg` directly: procps-ng 4.0.2's `kill -KILL -<pgid>` sends the signal to
        // *every* process, `kill(-1, ...)`)
        let pgid = self.child.id() as libc::pid_t;
        if pgid > 1 {
            // SAFETY: killpg only sends a signal; the group is the node's own session
            unsafe {
                libc::killpg(pgid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
