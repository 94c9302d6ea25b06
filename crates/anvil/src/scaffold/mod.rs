//! `anvil new <name> [--path DIR] [--anvil-path CHECKOUT]`: writes a standalone operator crate
//! built on this library -- a `Website` custom resource with CEL validation rules, a chain
//! reconciler, its desired-state predicate, a verification scope, the shim configuration, a
//! `main` that is a [`crate::Cli`], and tests that verify it from `cargo test` -- which
//! depends on an Anvil checkout by path. The files are embedded in the binary
//! ([`templates`]); `docs/write-your-own-controller.md` walks through them.
//!
//! The checkout's `Cargo.lock` is copied into the crate, so that it builds with the dependency
//! versions Anvil is tested with.

pub mod name;
pub mod templates;

use std::fs;
use std::path::{Path, PathBuf};

/// Arguments of `anvil new`.
#[derive(clap::Args, Debug, Clone)]
pub struct NewArgs {
    /// The crate's name, also its command's: lowercase letters, digits, `-` and `_`, starting
    /// with a letter.
    pub name: String,
    /// The directory to create the crate in (default: `./<name>`); it must not exist, or be
    /// empty.
    #[arg(long, value_name = "DIR")]
    pub path: Option<PathBuf>,
    /// The Anvil checkout the crate depends on, by path (default: the checkout this `anvil`
    /// was built from).
    #[arg(long, value_name = "CHECKOUT")]
    pub anvil_path: Option<PathBuf>,
}

/// Why `anvil new` failed.
#[derive(Debug, PartialEq, Eq)]
pub enum NewError {
    /// Bad input (name, directory, checkout): exit code 2.
    Usage(String),
    /// The files could not be written: exit code 1.
    Io(String),
}

impl std::fmt::Display for NewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NewError::Usage(e) | NewError::Io(e) => f.write_str(e),
        }
    }
}

/// What `anvil new` created.
#[derive(Debug)]
pub struct Created {
    /// The crate's directory.
    pub dir: PathBuf,
    /// The Anvil checkout it depends on (absolute).
    pub checkout: PathBuf,
    /// The files written, relative to `dir`.
    pub files: Vec<PathBuf>,
    /// Whether the checkout's `Cargo.lock` was copied.
    pub lock_copied: bool,
}

/// The checkout this binary was built from (`crates/anvil/../..`).
fn build_checkout() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The absolute path of an Anvil checkout: `given`, or the one this binary was built from.
pub fn find_checkout(given: Option<&Path>) -> Result<PathBuf, NewError> {
    let (dir, hint) = match given {
        Some(p) => (p.to_path_buf(), "--anvil-path"),
        None => (build_checkout(), "the checkout this `anvil` was built from"),
    };
    let manifest = dir.join("crates/anvil/Cargo.toml");
    let is_anvil = fs::read_to_string(&manifest)
        .map(|t| t.lines().any(|l| l.trim() == "name = \"anvil\""))
        .unwrap_or(false);
    if !is_anvil {
        return Err(NewError::Usage(format!(
            "{} ({hint}) is not an Anvil checkout: no crates/anvil/Cargo.toml of the `anvil` \
             crate there; pass --anvil-path CHECKOUT",
            dir.display()
        )));
    }
    fs::canonicalize(&dir)
        .map_err(|e| NewError::Usage(format!("cannot resolve {}: {e}", dir.display())))
}

/// Checks that `dir` does not exist or is an empty directory; `Ok(true)` when it exists.
fn check_target(dir: &Path) -> Result<bool, NewError> {
    match fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(NewError::Usage(format!(
            "cannot use {}: {e}",
            dir.display()
        ))),
        Ok(m) if !m.is_dir() => Err(NewError::Usage(format!(
            "{} exists and is not a directory; choose another --path",
            dir.display()
        ))),
        Ok(_) => {
            let mut entries = fs::read_dir(dir)
                .map_err(|e| NewError::Usage(format!("cannot read {}: {e}", dir.display())))?;
            if entries.next().is_some() {
                Err(NewError::Usage(format!(
                    "{} exists and is not empty; choose another --path",
                    dir.display()
                )))
            } else {
                Ok(true)
            }
        }
    }
}

/// Writes the crate. Nothing is left behind on failure (a directory that existed, empty, is
/// emptied again).
pub fn create(args: &NewArgs) -> Result<Created, NewError> {
    name::validate(&args.name).map_err(NewError::Usage)?;
    let checkout = find_checkout(args.anvil_path.as_deref())?;
    let dir = args
        .path
        .clone()
        .unwrap_or_else(|| PathBuf::from(&args.name));
    let existed = check_target(&dir)?;
    let anvil_crate = checkout.join("crates/anvil");
    let anvil_crate = anvil_crate.to_str().ok_or_else(|| {
        NewError::Usage(format!(
            "the checkout's path {} is not UTF-8, so Cargo.toml cannot name it",
            checkout.display()
        ))
    })?;
    let vars = templates::Vars {
        name: args.name.clone(),
        lib: name::lib_name(&args.name),
        group: name::api_group(&args.name),
        anvil_crate: templates::toml_escape(anvil_crate),
        anvil_checkout: checkout.display().to_string(),
    };
    let mut files = Vec::new();
    let result = write_all(&dir, &vars, &checkout, &mut files);
    match result {
        Ok(lock_copied) => Ok(Created {
            dir,
            checkout,
            files,
            lock_copied,
        }),
        Err(e) => {
            if existed {
                for f in &files {
                    let _ = fs::remove_file(dir.join(f));
                }
                for sub in ["src", "tests"] {
                    let _ = fs::remove_dir(dir.join(sub));
                }
            } else {
                let _ = fs::remove_dir_all(&dir);
            }
            Err(e)
        }
    }
}

/// Writes every template file (and the lock file) into `dir`, recording each in `files`;
/// `Ok(true)` when the checkout's `Cargo.lock` was copied.
fn write_all(
    dir: &Path,
    vars: &templates::Vars,
    checkout: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<bool, NewError> {
    let io = |path: &Path, e: std::io::Error| {
        NewError::Io(format!("cannot write {}: {e}", path.display()))
    };
    for t in templates::FILES {
        let path = dir.join(t.path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        fs::write(&path, templates::render(t.text, vars)).map_err(|e| io(&path, e))?;
        files.push(PathBuf::from(t.path));
    }
    let lock = checkout.join("Cargo.lock");
    if lock.is_file() {
        let to = dir.join("Cargo.lock");
        fs::copy(&lock, &to).map_err(|e| io(&to, e))?;
        files.push(PathBuf::from("Cargo.lock"));
        return Ok(true);
    }
    Ok(false)
}

/// `anvil new`: exit code 0 when the crate was written, 2 for bad input, 1 for I/O errors.
pub fn run(args: &NewArgs) -> i32 {
    match create(args) {
        Ok(c) => {
            println!(
                "created the operator crate `{}` in {} (Anvil: {})",
                args.name,
                c.dir.display(),
                c.checkout.display()
            );
            for f in &c.files {
                println!("  {}", f.display());
            }
            if c.lock_copied {
                println!(
                    "Cargo.lock is the checkout's: the dependency versions Anvil is tested with."
                );
            }
            println!(
                "\nnext:\n  cd {}\n  cargo run --release -- verify website   # model-check the controller\n  \
                 cargo test\n  cargo run -- crd website | kubectl apply -f -\n  cargo run -- run website\n\
                 then read docs/write-your-own-controller.md in the checkout.",
                c.dir.display()
            );
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                NewError::Usage(_) => 2,
                NewError::Io(_) => 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("anvil-new-unit-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        d
    }

    fn args(name: &str, path: &Path) -> NewArgs {
        NewArgs {
            name: name.into(),
            path: Some(path.to_path_buf()),
            anvil_path: None,
        }
    }

    #[test]
    fn writes_every_file_and_the_lock() {
        let d = tmp("ok");
        let c = create(&args("my-op", &d)).unwrap();
        assert!(c.lock_copied);
        for t in templates::FILES {
            assert!(d.join(t.path).is_file(), "{}", t.path);
        }
        let toml = fs::read_to_string(d.join("Cargo.toml")).unwrap();
        assert!(toml.contains("name = \"my-op\""));
        let main = fs::read_to_string(d.join("src/main.rs")).unwrap();
        assert!(main.contains("my_op::controller()"), "{main}");
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_non_empty_directory_is_refused_and_left_alone() {
        let d = tmp("busy");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("keep.txt"), "mine").unwrap();
        let e = create(&args("my-op", &d)).unwrap_err();
        assert!(
            matches!(&e, NewError::Usage(m) if m.contains("not empty")),
            "{e}"
        );
        assert_eq!(fs::read_to_string(d.join("keep.txt")).unwrap(), "mine");
        assert_eq!(fs::read_dir(&d).unwrap().count(), 1);
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn an_empty_directory_is_used() {
        let d = tmp("empty");
        fs::create_dir_all(&d).unwrap();
        assert!(create(&args("my-op", &d)).is_ok());
        fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn bad_names_and_checkouts_are_usage_errors() {
        let d = tmp("bad");
        let e = create(&args("My Op", &d)).unwrap_err();
        assert!(matches!(e, NewError::Usage(_)));
        let mut a = args("my-op", &d);
        a.anvil_path = Some(d.join("nowhere"));
        let e = create(&a).unwrap_err();
        assert!(
            matches!(&e, NewError::Usage(m) if m.contains("not an Anvil checkout")),
            "{e}"
        );
        assert!(!d.exists(), "nothing is created on bad input");
    }
}
