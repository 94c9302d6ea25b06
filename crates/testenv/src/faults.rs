//! Faults of the platform: killing, restarting, pausing and resuming the control plane's
//! processes, for tests of how a controller lives through an outage.
//!
//! Every component keeps what it needs to come back exactly as it was: the same program and
//! arguments (so the same ports, certificates, token file and etcd data directory), and its
//! log file, which a restart appends to. Use these on a private [`ControlPlane::start`]
//! instance: faults on [`ControlPlane::shared`] would hit every other test of the binary.
//!
//! ```no_run
//! # async fn demo() -> Result<(), anvil_testenv::TestEnvError> {
//! use anvil_testenv::{Component, ControlPlane};
//! let cp = ControlPlane::start()?;
//! cp.kill(Component::ApiServer)?; // SIGKILL; clients get "connection refused"
//! cp.restart(Component::ApiServer).await?; // same port, etcd and certificates; waits for /readyz
//! cp.pause(Component::ApiServer)?; // SIGSTOP; requests hang until the client times out
//! cp.resume(Component::ApiServer)?; // SIGCONT
//! cp.check_running()?; // nothing exited behind the test's back
//! # Ok(()) }
//! ```

use std::time::{Duration, Instant};

use crate::error::{Result, TestEnvError};
use crate::{ControlPlane, Process, STARTUP_TIMEOUT, process};

/// A process of the control plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Component {
    /// etcd (its data directory survives [`ControlPlane::kill`]).
    Etcd,
    /// kube-apiserver.
    ApiServer,
    /// kube-controller-manager (absent when `KUBEBUILDER_ASSETS` has none).
    ControllerManager,
}

impl Component {
    /// The binary's name: `etcd`, `kube-apiserver` or `kube-controller-manager`.
    pub fn name(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::ApiServer => "kube-apiserver",
            Component::ControllerManager => "kube-controller-manager",
        }
    }
}

impl std::fmt::Display for Component {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

fn signal(pid: u32, sig: libc::c_int, what: &str) -> Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| TestEnvError::Fault(format!("pid {pid} out of range")))?;
    // SAFETY: kill(2) with a pid of a child this process spawned and has not reaped.
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(TestEnvError::io(
            format!("cannot {what} process {pid}"),
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

impl ControlPlane {
    fn with_process<T>(
        &self,
        component: Component,
        f: impl FnOnce(&mut Process) -> Result<T>,
    ) -> Result<T> {
        let mut components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        let p = components
            .iter_mut()
            .find(|p| p.component == component)
            .ok_or_else(|| {
                TestEnvError::Fault(format!("this control plane runs no {component}"))
            })?;
        f(p)
    }

    /// The process id of `component`, or `None` while it is killed (or absent).
    pub fn pid(&self, component: Component) -> Option<u32> {
        self.with_process(component, |p| Ok(p.child.as_ref().map(|c| c.id())))
            .ok()
            .flatten()
    }

    /// Kills `component` with SIGKILL (also when it is paused) and reaps it. Its arguments,
    /// certificates and data stay, for [`ControlPlane::restart`]. Fails if it is already
    /// killed or this control plane has no such component.
    pub fn kill(&self, component: Component) -> Result<()> {
        self.with_process(component, |p| {
            let mut child = p
                .child
                .take()
                .ok_or_else(|| TestEnvError::Fault(format!("{component} is already killed")))?;
            let _ = child.kill();
            child
                .wait()
                .map_err(|e| TestEnvError::io(format!("cannot reap {component}"), e))?;
            tracing::info!(%component, "killed");
            Ok(())
        })
    }

    /// Starts a killed `component` again with exactly its original arguments (same ports,
    /// certificates, token file, etcd data directory; its log is appended to), then waits
    /// (at most 60 s) until it serves: etcd's `/health`, then (for etcd and kube-apiserver)
    /// the API server's `/readyz`. The controller manager is not waited for. Fails if the
    /// component runs, exits early, or does not become ready in time (with the logs).
    pub async fn restart(&self, component: Component) -> Result<()> {
        let (program, args, log) = self.with_process(component, |p| {
            if p.child.is_some() {
                return Err(TestEnvError::Fault(format!(
                    "{component} runs; kill it before restarting it"
                )));
            }
            Ok((p.program.clone(), p.args.clone(), p.log.clone()))
        })?;
        let child = process::spawn(&program, args, &log, true)?;
        self.record_pid(child.id())?;
        tracing::info!(%component, pid = child.id(), "restarted");
        self.with_process(component, |p| {
            p.child = Some(child);
            Ok(())
        })?;
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        match component {
            Component::Etcd => {
                self.wait_etcd_healthy(deadline).await?;
                self.wait_api_ready(deadline).await
            }
            Component::ApiServer => self.wait_api_ready(deadline).await,
            Component::ControllerManager => Ok(()),
        }
    }

    /// Stops `component` with SIGSTOP: it keeps its sockets, so connections to it hang
    /// instead of failing (an unreachable, not a dead, server). Fails if it is killed.
    pub fn pause(&self, component: Component) -> Result<()> {
        self.with_process(component, |p| {
            let pid = p
                .child
                .as_ref()
                .map(|c| c.id())
                .ok_or_else(|| TestEnvError::Fault(format!("{component} is killed")))?;
            signal(pid, libc::SIGSTOP, "pause")?;
            tracing::info!(%component, pid, "paused");
            Ok(())
        })
    }

    /// Continues a paused `component` with SIGCONT (harmless when it is not paused). Fails if
    /// it is killed.
    pub fn resume(&self, component: Component) -> Result<()> {
        self.with_process(component, |p| {
            let pid = p
                .child
                .as_ref()
                .map(|c| c.id())
                .ok_or_else(|| TestEnvError::Fault(format!("{component} is killed")))?;
            signal(pid, libc::SIGCONT, "resume")?;
            tracing::info!(%component, pid, "resumed");
            Ok(())
        })
    }

    /// Fails with [`TestEnvError::Exited`] if a component that was not killed on purpose has
    /// exited (e.g. the controller manager gave up during an outage).
    pub fn check_running(&self) -> Result<()> {
        let mut components = self.components.lock().unwrap_or_else(|e| e.into_inner());
        for p in components.iter_mut() {
            if let Some(child) = p.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                return Err(TestEnvError::Exited {
                    component: p.component.name(),
                    status,
                });
            }
        }
        Ok(())
    }

    /// Waits (at most `timeout`) until the API server's `/readyz` answers `ok`, e.g. after
    /// [`ControlPlane::resume`]. Fails with the components' logs otherwise.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        self.wait_api_ready(Instant::now() + timeout).await
    }

    async fn wait_etcd_healthy(&self, deadline: Instant) -> Result<()> {
        let addr = self
            .etcd_url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string();
        let mut last;
        loop {
            self.check_running()
                .map_err(|e| self.startup_error(e.to_string()))?;
            match http_get(&addr, "/health").await {
                Ok(body) if body.contains("\"health\":\"true\"") => return Ok(()),
                Ok(body) => last = body,
                Err(e) => last = e.to_string(),
            }
            if Instant::now() > deadline {
                return Err(self.startup_error(format!("etcd not healthy after a restart: {last}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn wait_api_ready(&self, deadline: Instant) -> Result<()> {
        let client = self.client().await?;
        let mut last;
        loop {
            self.check_running()
                .map_err(|e| self.startup_error(e.to_string()))?;
            let req = http::Request::get("/readyz")
                .body(Vec::new())
                .expect("valid request");
            let answer = tokio::time::timeout(Duration::from_secs(5), client.request_text(req));
            match answer.await {
                Ok(Ok(body)) if body.trim() == "ok" => return Ok(()),
                Ok(Ok(body)) => last = body,
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = "no answer within 5 s".into(),
            }
            if Instant::now() > deadline {
                return Err(self.startup_error(format!("kube-apiserver not ready: {last}")));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A plain HTTP/1.1 GET on `addr` (`host:port`), returning the whole response; 5 s at most.
async fn http_get(addr: &str, path: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(addr).await?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok(out)
    };
    tokio::time::timeout(Duration::from_secs(5), exchange)
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no answer within 5 s",
            ))
        })
}
