//! Spawning component processes so that they die with the test process.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, and the test harness
//! runs tests on short-lived threads. Every component is therefore forked from one dedicated
//! thread that lives as long as the process. A shell watchdog (not tied to any thread) also
//! kills the recorded pids and removes the working directory once the test process is gone.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::mpsc::{Sender, channel};

use crate::error::{Result, TestEnvError};

struct SpawnRequest {
    program: PathBuf,
    args: Vec<String>,
    log: File,
    reply: Sender<std::io::Result<Child>>,
}

fn spawner() -> &'static Sender<SpawnRequest> {
    static SPAWNER: OnceLock<Sender<SpawnRequest>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("anvil-testenv-spawner".into())
            .spawn(move || {
                // The sender lives in a static, so this loop (and thread) never ends.
                for req in rx {
                    let result = spawn_here(&req.program, &req.args, req.log);
                    let _ = req.reply.send(result);
                }
            })
            .expect("cannot start the anvil-testenv spawner thread");
        tx
    })
}

fn spawn_here(program: &Path, args: &[String], log: File) -> std::io::Result<Child> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        let parent = std::process::id() as libc::pid_t;
        // SAFETY: only async-signal-safe libc calls between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::getppid() != parent {
                    // The parent died between fork and prctl.
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
    cmd.spawn()
}

/// Spawns `program args...` with stdout and stderr written to `log` (truncated first, or
/// appended to when `append`), from the long-lived spawner thread.
pub(crate) fn spawn(program: &Path, args: Vec<String>, log: &Path, append: bool) -> Result<Child> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(log)
        .map_err(|e| TestEnvError::io(format!("cannot create log file {}", log.display()), e))?;
    let (reply, answer) = channel();
    spawner()
        .send(SpawnRequest {
            program: program.to_path_buf(),
            args,
            log: log_file,
            reply,
        })
        .map_err(|_| TestEnvError::Provision("the spawner thread is gone".into()))?;
    answer
        .recv()
        .map_err(|_| TestEnvError::Provision("the spawner thread is gone".into()))?
        .map_err(|e| TestEnvError::io(format!("cannot start {}", program.display()), e))
}

/// Starts a detached shell that waits for this process to exit, then kills every pid listed
/// in `pid_file` and removes `dir`.
pub(crate) fn start_watchdog(pid_file: &Path, dir: &Path) -> Result<()> {
    let script = r#"while kill -0 "$1" 2>/dev/null; do sleep 1; done
if [ -f "$2" ]; then for p in $(cat "$2"); do kill -9 "$p" 2>/dev/null; done; fi
rm -rf "$3""#;
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("anvil-testenv-watchdog")
        .arg(std::process::id().to_string())
        .arg(pid_file)
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map(drop)
        .map_err(|e| TestEnvError::io("cannot start the watchdog shell", e))
}
