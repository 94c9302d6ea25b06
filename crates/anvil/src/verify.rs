//! `verify <controller>`: the checker at the controller's scope (adjusted by flags or a scope
//! file), the report as text or JSON (and HTML), and the exit codes.

use crate::Cli;
use anvil_cluster_model::esr::{CheckOptions, Report};
pub use anvil_cluster_model::report_text::report_text;
use clap::{Args, ValueEnum};
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

/// Exit code: every property holds (complete search).
pub const EXIT_HOLDS: i32 = 0;
/// Exit code: some property is violated.
pub const EXIT_VIOLATED: i32 = 1;
/// Exit code: usage or configuration error.
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the search was incomplete (nothing violated, nothing claimed).
pub const EXIT_INCOMPLETE: i32 = 3;
/// Exit code: some property is vacuous (its premise was never reached for some spec of the
/// scope), nothing violated.
pub const EXIT_VACUOUS: i32 = 4;

/// Output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human-readable text.
    #[default]
    Text,
    /// One JSON document (schema in crates/anvil/README.md).
    Json,
}

/// Arguments of `anvil verify`.
#[derive(Args, Debug, Clone)]
pub struct VerifyArgs {
    /// The controller to verify (`list` names them).
    pub controller: String,
    /// Stop (incomplete, exit code 3) after this many distinct states.
    #[arg(long)]
    pub state_limit: Option<u64>,
    /// Stop (incomplete, exit code 3) above this resident memory, e.g. 4G, 512M, 100000.
    #[arg(long, value_parser = parse_bytes)]
    pub memory_limit: Option<u64>,
    /// Worker threads (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// No progress bar even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// Stop at the first safety violation (the other properties are then incomplete); by
    /// default every property gets its own verdict.
    #[arg(long)]
    pub stop_at_first_violation: bool,
    /// Scope file (YAML or JSON): the whole scope (namespace, name, specs, bounds, faults),
    /// replacing the controller's default; the flags below then adjust it.
    #[arg(long, value_name = "FILE")]
    pub scope: Option<std::path::PathBuf>,
    /// At most this many spec edits.
    #[arg(long)]
    pub edits: Option<u8>,
    /// At most this many deletions (each followed by a re-creation) of the custom resource.
    #[arg(long)]
    pub deletes: Option<u8>,
    /// At most this many stale requests (of crashed incarnations) in flight.
    #[arg(long)]
    pub stale: Option<usize>,
    /// Custom resources checked together: same kind and namespace, names `<name>`,
    /// `<name>-2`, ..., each with the scope's specs and its own edits and deletions.
    #[arg(long)]
    pub crs: Option<u8>,
    /// At most this many deletions, and this many updates, of managed objects by other
    /// writers.
    #[arg(long)]
    pub other_writers: Option<u8>,
    /// At most this many pod losses.
    #[arg(long)]
    pub pod_losses: Option<u8>,
    /// At most this many objects of one kind (more is a violation of object_bound).
    #[arg(long)]
    pub object_bound: Option<usize>,
    /// No controller crashes.
    #[arg(long)]
    pub no_crash: bool,
    /// No transient request failures (neither drops nor other errors).
    #[arg(long)]
    pub no_drop: bool,
    /// Transient failures answer every error the shim can surface, not only Timeout.
    #[arg(long)]
    pub transient: bool,
    /// Applied-then-failed requests: executed, but the controller gets an error.
    #[arg(long)]
    pub lost_responses: bool,
    /// Explore every interleaving, without the verdict-preserving reductions (fault classes
    /// without switches (finitely often), reads of a crashed controller dropped, responses
    /// processed in the step that delivers them): slower, for cross-checking them.
    #[arg(long)]
    pub no_reductions: bool,
    /// Also write the report as one self-contained HTML page (results, coverage, scope, and
    /// each counterexample as a sequence diagram) to this file.
    #[arg(long, value_name = "FILE")]
    pub html: Option<std::path::PathBuf>,
}

/// The effective scope: the scope file or the controller's default, adjusted by the flags.
pub fn effective_scope(
    args: &VerifyArgs,
    default: anvil_cluster_model::Scope,
) -> Result<anvil_cluster_model::Scope, String> {
    let mut s = match &args.scope {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the scope file {}: {e}", path.display()))?;
            serde_yaml::from_str::<anvil_cluster_model::Scope>(&text)
                .map_err(|e| format!("invalid scope file {}: {e}", path.display()))?
        }
        None => default,
    };
    if let Some(n) = args.crs {
        if n == 0 {
            return Err("--crs 0: at least one custom resource is needed".into());
        }
        s.crs = n;
    }
    if let Some(n) = args.edits {
        s.max_edits = n;
    }
    if let Some(n) = args.deletes {
        s.max_deletes = n;
    }
    if let Some(n) = args.stale {
        s.max_stale_requests = n;
    }
    if let Some(n) = args.other_writers {
        s.faults.other_deletes = n;
        s.faults.other_updates = n;
    }
    if let Some(n) = args.pod_losses {
        s.faults.pod_losses = n;
    }
    if let Some(n) = args.object_bound {
        s.max_objects_per_kind = n;
    }
    if args.no_crash {
        s.faults.crash = false;
    }
    if args.no_drop && args.transient {
        return Err("--no-drop and --transient contradict each other".into());
    }
    if args.no_drop {
        s.faults.drop = false;
        s.faults.transient = false;
    }
    if args.transient {
        s.faults.transient = true;
    }
    if args.lost_responses {
        s.faults.lost_response = true;
    }
    if s.specs.is_empty() {
        return Err("the scope has no spec".into());
    }
    if s.max_edits > 0 && s.specs.len() < 2 {
        return Err(format!(
            "the scope allows {} edit(s) but has a single spec: nothing to edit to",
            s.max_edits
        ));
    }
    Ok(s)
}

/// Parses `4G`, `512M`, `64K` or a plain byte count.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last() {
        Some('G' | 'g') => (&s[..s.len() - 1], 1u64 << 30),
        Some('M' | 'm') => (&s[..s.len() - 1], 1 << 20),
        Some('K' | 'k') => (&s[..s.len() - 1], 1 << 10),
        _ => (s, 1),
    };
    num.trim()
        .parse::<u64>()
        .map(|n| n * mult)
        .map_err(|e| format!("invalid size {s:?}: {e}"))
}

/// The exit code for a report.
pub fn exit_code(r: &Report) -> i32 {
    if r.config_error.is_some() {
        EXIT_USAGE
    } else if r.violated() {
        EXIT_VIOLATED
    } else if r.vacuous() {
        EXIT_VACUOUS
    } else if r.holds() {
        EXIT_HOLDS
    } else {
        EXIT_INCOMPLETE
    }
}

/// The JSON document for a report.
pub fn report_json(r: &Report) -> serde_json::Value {
    serde_json::json!({
        "controller": r.controller,
        "scope": r.scope,
        "complete": r.results.iter().all(|p| p.complete),
        "verdict": match exit_code(r) {
            EXIT_HOLDS => "holds",
            EXIT_VIOLATED => "violated",
            EXIT_USAGE => "config_error",
            EXIT_VACUOUS => "vacuous",
            _ => "incomplete",
        },
        "assumptions": r.assumptions,
        "config_error": r.config_error,
        "coverage": r.coverage,
        "fingerprint_collision_bound": r.fingerprint_collision_bound,
        "results": r.results.iter().map(|p| {
            let mut v = serde_json::to_value(p).expect("result serialises");
            v["coverage"] = serde_json::to_value(&r.coverage).expect("coverage serialises");
            v
        }).collect::<Vec<_>>(),
    })
}

/// Runs `verify` for a controller of `cli`; returns the exit code.
pub fn run(cli: &Cli, args: &VerifyArgs) -> i32 {
    let Some(c) = cli.find(&args.controller) else {
        let names: Vec<_> = cli.controllers().iter().map(|c| c.name).collect();
        eprintln!(
            "error: unknown controller {:?}; known controllers: {}",
            args.controller,
            names.join(", ")
        );
        return EXIT_USAGE;
    };
    if args.threads == Some(0) {
        eprintln!("error: --threads must be at least 1");
        return EXIT_USAGE;
    }
    let bar = (!args.no_progress && std::io::stderr().is_terminal()).then(|| {
        let pb = indicatif::ProgressBar::new_spinner();
        pb.enable_steady_tick(Duration::from_millis(200));
        pb
    });
    let mut opts = CheckOptions {
        state_limit: args.state_limit,
        memory_limit: args.memory_limit,
        threads: args.threads,
        progress: None,
        stop_at_first_violation: args.stop_at_first_violation,
        no_reductions: args.no_reductions,
    };
    if let Some(pb) = bar.clone() {
        opts.progress = Some(Arc::new(move |p: &anvil_cluster_model::esr::Progress| {
            pb.set_message(format!(
                "{}: {} states, {} transitions, queue {}, depth {}, {:.0} states/s",
                p.phase, p.states, p.transitions, p.queue, p.depth, p.states_per_second
            ));
        }));
    }
    let scope = match effective_scope(args, (c.scope)()) {
        Ok(s) => s,
        Err(e) => {
            if let Some(pb) = bar {
                pb.finish_and_clear();
            }
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let report = (c.check)(scope, &opts);
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    match args.format {
        Format::Text => print!("{}", report_text(&report)),
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report_json(&report)).expect("report serialises")
        ),
    }
    if let Some(path) = &args.html
        && let Err(e) = crate::report::write_html(path, &report)
    {
        eprintln!("error: {e}");
        return EXIT_USAGE;
    }
    exit_code(&report)
}
