//! `anvil verify <controller>`.

use crate::registry;
use anvil_cluster_model::esr::{CheckOptions, Report};
use anvil_cluster_model::render::trace_text;
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
    /// The controller to verify (see `anvil list`).
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

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / (1 << 20) as f64)
}

/// The text rendering of a report.
pub fn report_text(r: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "anvil verify {}", r.controller);
    let _ = writeln!(s, "{}", r.scope);
    let _ = writeln!(s, "modelling assumptions:");
    for a in &r.assumptions {
        let _ = writeln!(s, "  - {a}");
    }
    if let Some(e) = &r.config_error {
        let _ = writeln!(s, "\nCONFIGURATION ERROR: {e}\nnothing was checked.");
        return s;
    }
    if let Some(c) = &r.coverage {
        let _ = writeln!(
            s,
            "coverage{}:",
            if c.complete { "" } else { " (of an incomplete search)" }
        );
        for (i, sc) in c.specs.iter().enumerate() {
            let _ = writeln!(
                s,
                "  spec #{i}: CR alive with it {}; desired state reached {}",
                if sc.premise_reached { "yes" } else { "NO" },
                if sc.desired_state_reached { "yes" } else { "NO" }
            );
        }
    }
    let _ = writeln!(
        s,
        "fingerprint collision probability bound: {:.1e}",
        r.fingerprint_collision_bound
    );
    for p in &r.results {
        let _ = writeln!(
            s,
            "\nproperty {} ({}): {}{}",
            p.property,
            p.formula,
            p.verdict.to_uppercase(),
            if p.complete {
                " (complete search)"
            } else if p.verdict == "violated" {
                " (definitive; the search stopped before exploring everything)"
            } else {
                " (search INCOMPLETE: nothing claimed beyond what was explored)"
            }
        );
        let _ = writeln!(
            s,
            "  distinct states {}  transitions {}  depth {}  {:.2} s  peak memory {}",
            p.states,
            p.transitions,
            p.depth,
            p.seconds,
            mib(p.peak_memory_bytes)
        );
        if let Some(reason) = &p.reason {
            let _ = writeln!(s, "  reason: {reason}");
        }
        if let Some(t) = &p.counterexample {
            let v = match (p.counterexample_validated, &p.validation_error) {
                (Some(true), _) => "accepted by the trace validator".to_string(),
                (_, Some(e)) => format!("REJECTED by the trace validator: {e}"),
                _ => "not validated".to_string(),
            };
            let _ = writeln!(
                s,
                "  counterexample ({}, {} steps{}; {v}):",
                t.kind,
                t.prefix.len() + t.cycle.len(),
                if t.kind == "lasso" {
                    format!(", cycle of {}", t.cycle.len())
                } else {
                    String::new()
                }
            );
            s.push_str(&trace_text(t));
        }
    }
    s
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

/// Runs `anvil verify`; returns the exit code.
pub fn run(args: &VerifyArgs) -> i32 {
    let Some(c) = registry::find(&args.controller) else {
        let names: Vec<_> = registry::controllers().iter().map(|c| c.name).collect();
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
    };
    if let Some(pb) = bar.clone() {
        opts.progress = Some(Arc::new(move |p: &anvil_cluster_model::esr::Progress| {
            pb.set_message(format!(
                "{}: {} states, {} transitions, queue {}, depth {}, {:.0} states/s",
                p.phase, p.states, p.transitions, p.queue, p.depth, p.states_per_second
            ));
        }));
    }
    let report = (c.verify)(&opts);
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
    exit_code(&report)
}
