//! Locating (or building) the control-plane binaries.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{Result, TestEnvError};

/// Name of the provisioning script, relative to the workspace root.
const SCRIPT: &str = "scripts/provision-control-plane.sh";

/// Folder holding the control-plane binaries.
#[derive(Debug, Clone)]
pub(crate) struct Binaries {
    pub dir: PathBuf,
    pub etcd: PathBuf,
    pub apiserver: PathBuf,
    /// `None` if the folder has no kube-controller-manager (allowed for `KUBEBUILDER_ASSETS`).
    pub controller_manager: Option<PathBuf>,
}

impl Binaries {
    fn from_dir(dir: &Path) -> Option<Binaries> {
        let etcd = dir.join("etcd");
        let apiserver = dir.join("kube-apiserver");
        if !etcd.is_file() || !apiserver.is_file() {
            return None;
        }
        let kcm = dir.join("kube-controller-manager");
        Some(Binaries {
            dir: dir.to_path_buf(),
            etcd,
            apiserver,
            controller_manager: kcm.is_file().then_some(kcm),
        })
    }
}

fn script_candidates() -> Vec<PathBuf> {
    script_candidates_for(SCRIPT)
}

/// Where the workspace script `script` (a path relative to the workspace root) may be: below
/// every ancestor of this crate's manifest dir, of the tested crate's, and of the current dir.
pub(crate) fn script_candidates_for(script: &str) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    // This crate's own manifest dir (compile time): <workspace>/crates/testenv.
    roots.extend(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(Path::to_path_buf),
    );
    // The manifest dir of whatever crate is being tested (set by cargo at run time).
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        roots.extend(Path::new(&dir).ancestors().map(Path::to_path_buf));
    }
    if let Ok(dir) = std::env::current_dir() {
        roots.extend(dir.ancestors().map(Path::to_path_buf));
    }
    let mut out: Vec<PathBuf> = Vec::new();
    for root in roots {
        let candidate = root.join(script);
        if !out.contains(&candidate) {
            out.push(candidate);
        }
    }
    out
}

/// Finds the binaries: `KUBEBUILDER_ASSETS` if it names a folder holding `etcd` and
/// `kube-apiserver`; otherwise runs `scripts/provision-control-plane.sh` (which builds them into
/// a cache on first use) and takes the last line of its stdout.
pub(crate) fn locate() -> Result<Binaries> {
    let mut tried = Vec::new();
    if let Some(assets) = std::env::var_os("KUBEBUILDER_ASSETS").filter(|v| !v.is_empty()) {
        let dir = PathBuf::from(assets);
        if let Some(b) = Binaries::from_dir(&dir) {
            return Ok(b);
        }
        tried.push(format!(
            "KUBEBUILDER_ASSETS={} (no executable etcd and kube-apiserver there)",
            dir.display()
        ));
    } else {
        tried.push("KUBEBUILDER_ASSETS (not set)".to_string());
    }

    let candidates = script_candidates();
    let Some(script) = candidates.iter().find(|p| p.is_file()) else {
        tried.push(format!(
            "provisioning script {SCRIPT} (not found; looked at: {})",
            candidates
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        return Err(provision_error(&tried, None));
    };
    tried.push(format!("running {}", script.display()));
    match run_script(script) {
        Ok(dir) => match Binaries::from_dir(&dir) {
            Some(b) => Ok(b),
            None => {
                tried.push(format!(
                    "the script printed {}, which holds no etcd and kube-apiserver",
                    dir.display()
                ));
                Err(provision_error(&tried, None))
            }
        },
        Err(detail) => Err(provision_error(&tried, Some(&detail))),
    }
}

fn provision_error(tried: &[String], detail: Option<&str>) -> TestEnvError {
    let mut msg = String::from("tried:\n");
    for t in tried {
        msg.push_str("  - ");
        msg.push_str(t);
        msg.push('\n');
    }
    if let Some(d) = detail {
        msg.push_str(d);
        msg.push('\n');
    }
    msg.push_str(
        "Fix: run scripts/provision-control-plane.sh by hand (needs Go >= 1.24 and access to the \
         Go module proxy; the cold build takes a while), or set KUBEBUILDER_ASSETS to a folder \
         holding etcd, kube-apiserver and kube-controller-manager (as for controller-runtime's \
         envtest).",
    );
    TestEnvError::Provision(msg)
}

/// Runs the script, forwarding its stderr (progress) to ours while keeping a tail for errors.
fn run_script(script: &Path) -> std::result::Result<PathBuf, String> {
    let mut child = Command::new("bash")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run bash {}: {e}", script.display()))?;
    let stderr = child.stderr.take().expect("piped stderr");
    let forwarder = std::thread::spawn(move || {
        let mut tail: VecDeque<String> = VecDeque::new();
        for line in BufReader::new(stderr).lines().map_while(|l| l.ok()) {
            // Straight to fd 2, not `eprintln!`: the test harness would capture the latter and
            // hide the progress of a long cold build.
            let _ = writeln!(std::io::stderr(), "{line}");
            if tail.len() == 40 {
                tail.pop_front();
            }
            tail.push_back(line);
        }
        tail.into_iter().collect::<Vec<_>>().join("\n")
    });
    let mut stdout = String::new();
    let read = child
        .stdout
        .take()
        .expect("piped stdout")
        .read_to_string(&mut stdout);
    let status = child
        .wait()
        .map_err(|e| format!("waiting for the script: {e}"))?;
    let tail = forwarder.join().unwrap_or_default();
    read.map_err(|e| format!("reading the script's stdout: {e}"))?;
    if !status.success() {
        return Err(format!(
            "{} failed ({status}); last lines of its stderr:\n{tail}",
            script.display()
        ));
    }
    stdout
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| format!("{} printed nothing on stdout", script.display()))
}
