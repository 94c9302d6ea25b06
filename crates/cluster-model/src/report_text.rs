//! The plain-text rendering of a [`Report`] (what `anvil verify` prints, and what the
//! controllers' examples and `anvil::testing` show): scope, assumptions, coverage, each
//! property's verdict with its numbers, and each counterexample.

use crate::esr::Report;
use crate::render::trace_text;

/// A byte count in MiB with one decimal.
pub fn mib(b: u64) -> String {
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
            if c.complete {
                ""
            } else {
                " (of an incomplete search)"
            }
        );
        let several = c.specs.iter().any(|x| x.cr != c.specs[0].cr);
        for (j, sc) in c.specs.iter().enumerate() {
            // the spec's index among its custom resource's specs, named when there are several
            let i = c.specs[..j].iter().filter(|x| x.cr == sc.cr).count();
            let cr = if several {
                format!("{}: ", sc.cr)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "  {cr}spec #{i}: CR alive with it {}; desired state reached {}",
                if sc.premise_reached { "yes" } else { "NO" },
                if sc.desired_state_reached {
                    "yes"
                } else {
                    "NO"
                }
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
