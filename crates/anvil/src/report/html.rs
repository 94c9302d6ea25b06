//! One self-contained HTML page for a verification [`Report`]: no network, no CDN; the
//! stylesheet and the script (`assets/`) are inlined, and every text from the report is
//! escaped.
//!
//! The page shows the verdict, a table of the properties (verdict, completeness, coverage,
//! states, time, memory), the coverage per spec, the scope and the modelling assumptions, and
//! for each counterexample a sequence diagram: one lane per actor ([`LANES`]), one arrow per
//! request, response or fault, the object changes of each step as an expandable field-by-field
//! diff, a lasso's cycle framed and drawn a second time (it repeats forever), and the step
//! after which the cluster never again matched the custom resource. Steps are navigable with
//! the keyboard (`j`/`k` or the arrow keys, see the page's header); the print stylesheet
//! opens every diff.
//!
//! Stable hooks (the browser test relies on them): `.lane-head[data-lane]` (one per lane),
//! `section.counterexample[data-property][data-kind][data-steps]`, `.step[data-step]` (one
//! per step of a trace, in order), `.msg[data-from][data-to]` (arrows), `.cycle` and
//! `.banner.cycle-start[data-cycle-start]`, `.cycle-repeat`, `.step.last-desired`,
//! `details.changes .obj[data-op][data-object]`, and `html[data-js=ready]` once the script ran.

use crate::verify::{EXIT_HOLDS, EXIT_USAGE, EXIT_VACUOUS, EXIT_VIOLATED, exit_code};
use anvil_cluster_model::esr::{Coverage, PropertyReport, Report};
use anvil_cluster_model::render::{LANES, ObjectDiff, Trace, TraceMessage, TraceStep, lane_of};
use anvil_cluster_model::report_text::mib;
use std::fmt::Write as _;

const CSS: &str = include_str!("assets/report.css");
const JS: &str = include_str!("assets/report.js");

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The display name of a lane.
pub fn lane_title(lane: &str) -> &'static str {
    match lane {
        "user" => "User",
        "controller" => "Controller",
        "api-server" => "API server",
        "external-system" => "External system",
        "garbage-collector" => "Garbage collector",
        "built-in-controllers" => "Built-in controllers",
        "fault" => "Faults",
        "other-writer" => "Other writers",
        _ => "?",
    }
}

fn lane_index(lane: &str) -> Option<usize> {
    LANES.iter().position(|l| *l == lane)
}

fn step_lane(st: &TraceStep) -> Option<&str> {
    st.lane.as_deref().or_else(|| lane_of(&st.actor))
}

/// The overall verdict, as in `--format json`.
pub fn overall_verdict(r: &Report) -> &'static str {
    match exit_code(r) {
        EXIT_HOLDS => "holds",
        EXIT_VIOLATED => "violated",
        EXIT_USAGE => "config_error",
        EXIT_VACUOUS => "vacuous",
        _ => "incomplete",
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn cr_count(c: &Coverage) -> usize {
    c.specs
        .iter()
        .map(|s| s.cr.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

fn coverage_summary(c: &Coverage) -> String {
    let n = c.specs.len();
    let alive = c.specs.iter().filter(|s| s.premise_reached).count();
    let desired = c.specs.iter().filter(|s| s.desired_state_reached).count();
    let what = if cr_count(c) > 1 {
        "(custom resource, spec) pairs"
    } else {
        "specs"
    };
    format!(
        "{alive}/{n} {what} alive, desired state reached for {desired}/{n}{}",
        if c.complete {
            ""
        } else {
            " (incomplete search)"
        }
    )
}

/// Renders the report as one self-contained HTML page.
pub fn render_html(r: &Report) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let verdict = overall_verdict(r);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"generator\" content=\"anvil {}\">\n\
         <title>anvil verify {}: {}</title>\n<style>\n{CSS}</style>\n</head>\n",
        env!("CARGO_PKG_VERSION"),
        escape(&r.controller),
        verdict
    );
    let _ = writeln!(
        h,
        "<body data-controller=\"{}\" data-verdict=\"{verdict}\">",
        escape(&r.controller)
    );
    let cxs: Vec<(&PropertyReport, &Trace)> = r
        .results
        .iter()
        .filter_map(|p| p.counterexample.as_ref().map(|t| (p, t)))
        .collect();
    header(&mut h, r, verdict, &cxs);
    if let Some(e) = &r.config_error {
        let _ = writeln!(
            h,
            "<div class=\"config-error\"><strong>Configuration error:</strong> {}<br>Nothing was checked.</div>",
            escape(e)
        );
    } else {
        results(&mut h, r, &cxs);
    }
    if let Some(c) = &r.coverage {
        coverage(&mut h, c);
    }
    let _ = writeln!(
        h,
        "<section id=\"scope\"><h2>Scope</h2>\n<pre class=\"scope\">{}</pre></section>",
        escape(r.scope.to_string().trim_end())
    );
    h.push_str(
        "<section id=\"assumptions\"><h2>Modelling assumptions</h2>\n<ul class=\"assumptions\">\n",
    );
    for a in &r.assumptions {
        let _ = writeln!(h, "<li>{}</li>", escape(a));
    }
    h.push_str("</ul></section>\n");
    for (i, (p, t)) in cxs.iter().enumerate() {
        counterexample(&mut h, i, p, t);
    }
    let _ = write!(
        h,
        "<footer>Generated by <code>anvil verify {}</code> (anvil {}). This page is self-contained: it loads nothing from the network.</footer>\n\
         <div id=\"nav-status\" aria-live=\"polite\"></div>\n<script>\n{JS}</script>\n</body>\n</html>\n",
        escape(&r.controller),
        env!("CARGO_PKG_VERSION")
    );
    h
}

fn header(h: &mut String, r: &Report, verdict: &str, cxs: &[(&PropertyReport, &Trace)]) {
    let what = match verdict {
        "holds" => "every property holds (complete search)".to_string(),
        "violated" => {
            let names: Vec<&str> = r
                .results
                .iter()
                .filter(|p| p.verdict == "violated")
                .map(|p| p.property.as_str())
                .collect();
            format!("violated: {}", names.join(", "))
        }
        "vacuous" => "some property is vacuous: its premise was never reached".to_string(),
        "config_error" => "the scope was rejected: nothing was checked".to_string(),
        _ => "the search was incomplete: nothing is claimed beyond what was explored".to_string(),
    };
    let _ = writeln!(
        h,
        "<header class=\"top v-{verdict}\"><h1>anvil verify <code>{}</code></h1> \
         <span class=\"badge\">{}</span> <span class=\"summary\">{}</span></header>",
        escape(&r.controller),
        verdict.replace('_', " "),
        escape(&what)
    );
    h.push_str("<nav class=\"toc\"><a href=\"#results\">Results</a><a href=\"#coverage\">Coverage</a><a href=\"#scope\">Scope</a><a href=\"#assumptions\">Assumptions</a>");
    for (i, (p, _)) in cxs.iter().enumerate() {
        let _ = write!(
            h,
            "<a href=\"#cx{i}\">Counterexample: {}</a>",
            escape(&p.property)
        );
    }
    h.push_str("</nav>\n");
    if !cxs.is_empty() {
        h.push_str(
            "<p class=\"keys\">Keys: <kbd>j</kbd>/<kbd>&darr;</kbd> next step, <kbd>k</kbd>/<kbd>&uarr;</kbd> previous, \
             <kbd>Enter</kbd>/<kbd>o</kbd> open the step's changes, <kbd>x</kbd> open or close all, \
             <kbd>g</kbd>/<kbd>G</kbd> first/last step, <kbd>c</kbd> cycle start, <kbd>n</kbd>/<kbd>p</kbd> next/previous counterexample. \
             Click a step to select it.</p>\n",
        );
    }
}

fn results(h: &mut String, r: &Report, cxs: &[(&PropertyReport, &Trace)]) {
    h.push_str(
        "<section id=\"results\"><h2>Results</h2>\n<table class=\"results\"><thead><tr>\
         <th>property</th><th>formula</th><th>verdict</th><th>search</th><th>coverage</th>\
         <th>distinct states</th><th>transitions</th><th>depth</th><th>time</th><th>peak memory</th><th>counterexample</th>\
         </tr></thead>\n<tbody>\n",
    );
    // short form (the coverage section below says it in full)
    let cov = r
        .coverage
        .as_ref()
        .map(|c| {
            let n = c.specs.len();
            format!(
                "specs alive {}/{n}, desired state {}/{n}{}",
                c.specs.iter().filter(|s| s.premise_reached).count(),
                c.specs.iter().filter(|s| s.desired_state_reached).count(),
                if c.complete { "" } else { " (incomplete)" }
            )
        })
        .unwrap_or_else(|| "-".into());
    for p in &r.results {
        let search = if p.complete {
            "complete".to_string()
        } else if p.verdict == "violated" {
            "stopped early (the violation is definitive)".to_string()
        } else {
            "INCOMPLETE".to_string()
        };
        let reason = p
            .reason
            .as_ref()
            .map(|x| format!("<div class=\"reason\">{}</div>", escape(x)))
            .unwrap_or_default();
        let cx = match cxs.iter().position(|(q, _)| std::ptr::eq(*q, p)) {
            Some(i) => {
                let t = cxs[i].1;
                let v = match (p.counterexample_validated, &p.validation_error) {
                    (Some(true), _) => "validated".to_string(),
                    (_, Some(e)) => format!("REJECTED by the validator: {}", escape(e)),
                    _ => "not validated".to_string(),
                };
                format!(
                    "<a href=\"#cx{i}\">{} of {} steps</a><div class=\"reason\">{v}</div>",
                    escape(&t.kind),
                    t.prefix.len() + t.cycle.len()
                )
            }
            None => "-".into(),
        };
        let _ = writeln!(
            h,
            "<tr class=\"v-{v}\" data-property=\"{prop}\" data-verdict=\"{v}\"><td><code>{prop}</code></td><td><code>{formula}</code></td>\
             <td><span class=\"badge\">{v}</span>{reason}</td><td>{search}</td><td>{cov}</td>\
             <td class=\"num\">{states}</td><td class=\"num\">{trans}</td><td class=\"num\">{depth}</td>\
             <td class=\"num\">{secs:.2} s</td><td class=\"num\">{mem}</td><td>{cx}</td></tr>",
            v = escape(&p.verdict),
            prop = escape(&p.property),
            formula = escape(&p.formula),
            search = escape(&search),
            cov = escape(&cov),
            states = thousands(p.states),
            trans = thousands(p.transitions),
            depth = p.depth,
            secs = p.seconds,
            mem = mib(p.peak_memory_bytes),
        );
    }
    let _ = writeln!(
        h,
        "</tbody></table>\n<p class=\"reason\">Fingerprint collision probability bound: {:.1e}</p></section>",
        r.fingerprint_collision_bound
    );
}

fn coverage(h: &mut String, c: &Coverage) {
    let _ = writeln!(
        h,
        "<section id=\"coverage\"><h2>Coverage</h2>\n<p>{}</p>\n<table class=\"coverage\"><thead><tr><th>custom resource</th><th>spec</th><th></th>\
         <th>custom resource alive with it (ESR premise)</th><th>desired state reached</th></tr></thead><tbody>",
        escape(&coverage_summary(c))
    );
    let yn = |b: bool| {
        if b {
            "<span class=\"yes\">yes</span>"
        } else {
            "<span class=\"no\">NO</span>"
        }
    };
    let mut seen: std::collections::BTreeMap<&str, usize> = Default::default();
    for s in &c.specs {
        let i = seen.entry(s.cr.as_str()).or_default();
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code></td><td>#{i}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(&s.cr),
            escape(&s.spec.to_string()),
            yn(s.premise_reached),
            yn(s.desired_state_reached)
        );
        *i += 1;
    }
    h.push_str("</tbody></table></section>\n");
}

/// Which lanes a trace uses.
fn used_lanes(steps: &[&TraceStep]) -> Vec<bool> {
    let mut used = vec![false; LANES.len()];
    for st in steps {
        if let Some(i) = step_lane(st).and_then(lane_index) {
            used[i] = true;
        }
        for m in &st.messages {
            for l in [&m.from, &m.to] {
                if let Some(i) = lane_index(l) {
                    used[i] = true;
                }
            }
        }
    }
    used
}

fn counterexample(h: &mut String, n: usize, p: &PropertyReport, t: &Trace) {
    let all: Vec<&TraceStep> = t.prefix.iter().chain(&t.cycle).collect();
    let lasso = t.kind == "lasso";
    let cycle_start = t.prefix.last().map(|s| s.step).unwrap_or(0);
    let last_desired = all.iter().rposition(|s| s.matches == Some(true));
    let matches_known = all.iter().any(|s| s.matches.is_some());
    let validation = match (p.counterexample_validated, &p.validation_error) {
        (Some(true), _) => {
            "<span class=\"validated\">accepted by the trace validator</span>".to_string()
        }
        (_, Some(e)) => format!(
            "<span class=\"rejected\">REJECTED by the trace validator: {}</span>",
            escape(e)
        ),
        _ => "not validated".to_string(),
    };
    let _ = writeln!(
        h,
        "<section class=\"counterexample\" id=\"cx{n}\" data-property=\"{prop}\" data-kind=\"{kind}\" data-steps=\"{steps}\" data-cycle=\"{cyc}\">\n\
         <h2>Counterexample: <code>{prop}</code> <span class=\"badge v-violated\">violated</span></h2>\n\
         <p class=\"cx-meta\">{what}, {steps} steps{cycle}; {validation}. Property: <code>{formula}</code>.</p>",
        prop = escape(&p.property),
        kind = escape(&t.kind),
        steps = all.len(),
        cyc = t.cycle.len(),
        what = if lasso {
            "A lasso (a path, then a cycle that repeats forever)"
        } else {
            "A path ending in the violation"
        },
        cycle = if lasso {
            format!(", cycle of {}", t.cycle.len())
        } else {
            String::new()
        },
        formula = escape(&p.formula),
    );
    h.push_str(
        "<div class=\"legend\"><span><span class=\"sw\"></span>request</span>\
         <span><span class=\"sw response\"></span>response</span>\
         <span><span class=\"sw signal\"></span>fault</span>\
         <span><span class=\"sw ignored\"></span>ignored (stale)</span>\
         <span><span class=\"flag cr on\">CR</span> custom resource exists</span>\
         <span><span class=\"flag match on\">=</span> cluster matches it</span>",
    );
    if lasso {
        h.push_str("<span><span class=\"box cyc\"></span>cycle (repeats forever)</span>");
    }
    if matches_known {
        h.push_str("<span><span class=\"box des\"></span>desired state last held</span>");
    }
    h.push_str("</div>\n");
    let used = used_lanes(&all);
    let _ = write!(
        h,
        "<div class=\"seq\" style=\"--lanes:{}\">\n<div class=\"row seq-head\"><div>step</div><div class=\"lanes-head\">",
        LANES.len()
    );
    for (i, l) in LANES.iter().enumerate() {
        let _ = write!(
            h,
            "<div class=\"lane-head{}\" data-lane=\"{l}\" style=\"--lane-color:var(--lane-{l})\">{}</div>",
            if used[i] { "" } else { " idle" },
            lane_title(l)
        );
    }
    h.push_str("</div><div>what happens</div></div>\n");
    if matches_known && last_desired.is_none() {
        h.push_str("<div class=\"banner desired-never\">The cluster never matched the custom resource along this trace.</div>\n");
    }
    let ctx = StepCtx {
        n,
        property: &p.property,
        last_desired_step: last_desired.map(|i| all[i].step),
        last_desired_in_cycle: last_desired.is_some_and(|i| i >= t.prefix.len()),
        violating_step: (!lasso).then(|| all.last().map(|s| s.step)).flatten(),
    };
    for st in &t.prefix {
        step_row(h, &ctx, st, false);
    }
    if lasso {
        let first = t.cycle.first().map(|s| s.step).unwrap_or(cycle_start);
        let last = t.cycle.last().map(|s| s.step).unwrap_or(cycle_start);
        let _ = writeln!(
            h,
            "<div class=\"banner cycle-start\" data-cycle-start=\"{cycle_start}\">&#x21bb; The cycle starts in the state after step {cycle_start}: \
             step{} {first}{} repeat{} forever, and every fairness obligation is met along {}.</div>",
            if t.cycle.len() == 1 { "" } else { "s" },
            if t.cycle.len() == 1 {
                String::new()
            } else {
                format!("&ndash;{last}")
            },
            if t.cycle.len() == 1 { "s" } else { "" },
            if t.cycle.len() == 1 { "it" } else { "them" },
        );
        let _ = writeln!(
            h,
            "<div class=\"cycle\" data-cycle-start=\"{cycle_start}\" data-cycle-len=\"{}\">",
            t.cycle.len()
        );
        for st in &t.cycle {
            step_row(h, &ctx, st, false);
        }
        h.push_str("</div>\n");
        let _ = writeln!(
            h,
            "<div class=\"banner cycle-end\">&#x21ba; Back in the state after step {cycle_start}: the cycle starts again.</div>\n\
             <div class=\"cycle-repeat\" aria-hidden=\"true\" title=\"the cycle again (its second pass)\">"
        );
        for st in &t.cycle {
            step_row(h, &ctx, st, true);
        }
        h.push_str("</div>\n<div class=\"banner forever\">&hellip; and so on, forever.</div>\n");
    }
    h.push_str("</div></section>\n");
}

struct StepCtx<'a> {
    n: usize,
    property: &'a str,
    last_desired_step: Option<usize>,
    last_desired_in_cycle: bool,
    violating_step: Option<usize>,
}

fn message(h: &mut String, m: &TraceMessage) {
    let (Some(a), Some(b)) = (lane_index(&m.from), lane_index(&m.to)) else {
        let _ = write!(
            h,
            "<div class=\"note\" style=\"--at:-0.5\"><span class=\"label\">{}</span></div>",
            escape(&m.label)
        );
        return;
    };
    let (lo, hi) = (a.min(b), a.max(b));
    let label = if m.ignored {
        format!("{} (ignored: the request was stale)", m.label)
    } else {
        m.label.clone()
    };
    let _ = write!(
        h,
        "<div class=\"msg {kind} {dir}{ign}\" data-from=\"{from}\" data-to=\"{to}\" data-kind=\"{kind}\" \
         style=\"--lo:{lo};--hi:{hi};--c:var(--lane-{from})\" title=\"{label}\"><span class=\"arrow\"></span><span class=\"label\">{label}</span></div>",
        kind = escape(&m.kind),
        dir = if b >= a { "ltr" } else { "rtl" },
        ign = if m.ignored { " ignored" } else { "" },
        from = escape(&m.from),
        to = escape(&m.to),
        label = escape(&label),
    );
}

fn diff_summary(d: &ObjectDiff) -> String {
    let sym = match d.op.as_str() {
        "created" => '+',
        "deleted" => '-',
        _ => '~',
    };
    format!("{sym} {}", d.object)
}

fn step_row(h: &mut String, ctx: &StepCtx<'_>, st: &TraceStep, repeat: bool) {
    let lane = step_lane(st);
    let lane_i = lane.and_then(lane_index);
    let last_desired = !repeat && ctx.last_desired_step == Some(st.step);
    let violating = !repeat && ctx.violating_step == Some(st.step);
    let mut classes = String::from("row");
    if repeat {
        classes.push_str(" repeat");
    } else {
        classes.push_str(" step");
    }
    if last_desired {
        classes.push_str(" last-desired");
    }
    if violating {
        classes.push_str(" violating");
    }
    let color = lane
        .map(|l| format!(" style=\"--c:var(--lane-{})\"", escape(l)))
        .unwrap_or_default();
    if repeat {
        let _ = write!(h, "<div class=\"{classes}\"{color}>");
    } else {
        let _ = write!(
            h,
            "<div class=\"{classes}\" id=\"cx{}-s{}\" data-step=\"{}\" data-actor=\"{}\" data-lane=\"{}\"{color}>",
            ctx.n,
            st.step,
            st.step,
            escape(&st.actor),
            escape(lane.unwrap_or(""))
        );
    }
    // step number and state flags
    let _ = write!(
        h,
        "<div class=\"col-step\"><span class=\"num\">{}{}</span><span class=\"flags\"><span class=\"flag cr {}\" title=\"the custom resource {}\">CR</span>",
        st.step,
        if repeat { "&prime;" } else { "" },
        if st.cr_exists { "on" } else { "off" },
        if st.cr_exists {
            "exists (desired_state_is)"
        } else {
            "does not exist or is being deleted"
        }
    );
    if let Some(m) = st.matches {
        let _ = write!(
            h,
            "<span class=\"flag match {}\" title=\"{}\">=</span>",
            if m { "on" } else { "off" },
            if m {
                "the cluster matches the custom resource (current_state_matches)"
            } else {
                "the cluster does not match the custom resource"
            }
        );
    }
    h.push_str("</span></div>");
    // lanes
    h.push_str("<div class=\"lanes\">");
    if let Some(i) = lane_i {
        let _ = write!(h, "<span class=\"act\" style=\"--at:{i}\"></span>");
    }
    let drawn: Vec<&TraceMessage> = st
        .messages
        .iter()
        .filter(|m| m.from != m.to || lane_index(&m.from).is_none())
        .collect();
    if drawn.is_empty() {
        let _ = write!(
            h,
            "<div class=\"note\" style=\"--at:{}\"><span class=\"label\" title=\"{a}\">{a}</span></div>",
            lane_i.map(|i| i as f64).unwrap_or(-0.5),
            a = escape(&st.action)
        );
    }
    for m in drawn {
        message(h, m);
    }
    h.push_str("</div>");
    // description
    h.push_str("<div class=\"col-desc\">");
    if last_desired {
        let _ = write!(
            h,
            "<span class=\"marker desired\" title=\"the last state of the trace in which current_state_matches holds\">desired state last held{}</span>",
            if ctx.last_desired_in_cycle {
                " (again in every pass of the cycle)"
            } else {
                ": never again after this step"
            }
        );
    }
    if violating {
        let _ = write!(
            h,
            "<span class=\"marker violation\">{} is violated here</span>",
            escape(ctx.property)
        );
    }
    let _ = write!(
        h,
        "<span class=\"actor\">{}</span> <span class=\"action\">{}</span>",
        escape(&st.actor),
        escape(&st.action)
    );
    if !repeat {
        details(h, st);
    }
    h.push_str("</div></div>\n");
}

fn details(h: &mut String, st: &TraceStep) {
    let n = if st.diffs.is_empty() {
        st.changes.len()
    } else {
        st.diffs.len()
    };
    if n == 0 && st.request.is_none() && st.response.is_none() {
        h.push_str("<div class=\"none\">no object changes</div>");
        return;
    }
    let objs: Vec<String> = if st.diffs.is_empty() {
        st.changes
            .iter()
            .map(|c| c.split(':').next().unwrap_or(c).to_string())
            .collect()
    } else {
        st.diffs.iter().map(diff_summary).collect()
    };
    let _ = write!(
        h,
        "<details class=\"changes\" data-changes=\"{n}\"><summary>{} <span class=\"objs\">{}</span></summary>",
        match n {
            0 => "no object changes; request and response".to_string(),
            1 => "1 object change".to_string(),
            n => format!("{n} object changes"),
        },
        escape(&objs.join(", "))
    );
    let (req_k, resp_k) = if st.actor == "controller" {
        ("sends", "received")
    } else {
        ("request", "response")
    };
    if let Some(r) = &st.response
        && st.actor == "controller"
    {
        let _ = write!(
            h,
            "<div class=\"rr\"><span class=\"k\">{resp_k}</span> <code>{}</code></div>",
            escape(r)
        );
    }
    if let Some(r) = &st.request {
        let _ = write!(
            h,
            "<div class=\"rr\"><span class=\"k\">{req_k}</span> <code>{}</code></div>",
            escape(r)
        );
    }
    if let Some(r) = &st.response
        && st.actor != "controller"
    {
        let _ = write!(
            h,
            "<div class=\"rr\"><span class=\"k\">{resp_k}</span> <code>{}</code></div>",
            escape(r)
        );
    }
    if st.diffs.is_empty() {
        for c in &st.changes {
            let _ = write!(h, "<pre class=\"change\">{}</pre>", escape(c));
        }
    }
    for d in &st.diffs {
        let _ = write!(
            h,
            "<div class=\"obj\" data-op=\"{op}\" data-object=\"{obj}\"><div class=\"obj-head\">{sum} {op}{rv}</div><table class=\"diff\">",
            op = escape(&d.op),
            obj = escape(&d.object),
            sum = escape(&diff_summary(d)),
            rv = d
                .resource_version
                .as_ref()
                .map(|v| format!(" (resourceVersion {})", escape(v)))
                .unwrap_or_default(),
        );
        for f in &d.fields {
            let class = match (&f.before, &f.after) {
                (None, _) => "added",
                (_, None) => "removed",
                _ => "modified",
            };
            let _ = write!(
                h,
                "<tr class=\"{class}\"><td class=\"path\">{}</td><td class=\"before\">{}</td><td class=\"after\">{}</td></tr>",
                escape(&f.path),
                escape(f.before.as_deref().unwrap_or("")),
                escape(f.after.as_deref().unwrap_or(""))
            );
        }
        h.push_str("</table></div>");
    }
    h.push_str("</details>");
}

#[cfg(test)]
mod tests {
    use super::*;
    use anvil_cluster_model::Scope;
    use anvil_cluster_model::esr::SpecCoverage;
    use anvil_cluster_model::render::FieldChange;

    fn step(n: usize, actor: &str, action: &str) -> TraceStep {
        TraceStep {
            step: n,
            actor: actor.into(),
            action: action.into(),
            request: None,
            response: None,
            changes: Vec::new(),
            cr_exists: true,
            lane: lane_of(actor).map(str::to_string),
            messages: Vec::new(),
            diffs: Vec::new(),
            matches: Some(false),
        }
    }

    fn msg(from: &str, to: &str, kind: &str, label: &str) -> TraceMessage {
        TraceMessage {
            from: from.into(),
            to: to.into(),
            kind: kind.into(),
            label: label.into(),
            ignored: false,
        }
    }

    fn property(verdict: &str, cx: Option<Trace>) -> PropertyReport {
        PropertyReport {
            property: "esr".into(),
            formula: "[]P ~> []Q".into(),
            verdict: verdict.into(),
            complete: true,
            states: 1_234_567,
            transitions: 89,
            depth: 7,
            seconds: 1.5,
            peak_memory_bytes: 3 << 20,
            scope: serde_json::Value::Null,
            reason: None,
            counterexample_validated: cx.as_ref().map(|_| true),
            counterexample: cx,
            validation_error: None,
        }
    }

    fn report(results: Vec<PropertyReport>) -> Report {
        Report {
            controller: "demo".into(),
            scope: Scope::new("default", "demo", serde_json::json!({"replicas": 1})),
            assumptions: vec!["one controller process".into()],
            config_error: None,
            coverage: Some(Coverage {
                specs: vec![SpecCoverage {
                    cr: "demo".into(),
                    spec: serde_json::json!({"replicas": 1}),
                    premise_reached: true,
                    desired_state_reached: true,
                }],
                complete: true,
            }),
            fingerprint_collision_bound: 1e-12,
            results,
        }
    }

    /// A lasso: 0 initial, 1 user creates, 2 controller sends a Create, 3 the API server
    /// answers (the cluster matches), 4 crash (prefix ends); cycle: 5 a controller step.
    fn lasso() -> Trace {
        let mut s0 = step(0, "-", "initial state");
        s0.cr_exists = false;
        s0.lane = None;
        let mut s1 = step(1, "user", "creates the custom resource");
        s1.messages.push(msg(
            "user",
            "api-server",
            "request",
            "Create DemoApp/default/demo",
        ));
        let mut s2 = step(
            2,
            "controller",
            "starts a reconcile of DemoApp/default/demo",
        );
        s2.request = Some("Create ConfigMap/default/demo-config".into());
        s2.messages.push(msg(
            "controller",
            "api-server",
            "request",
            "Create ConfigMap/default/demo-config",
        ));
        let mut s3 = step(3, "api-server", "executes a request");
        s3.response = Some("Create: ok".into());
        s3.messages
            .push(msg("api-server", "controller", "response", "Create: ok"));
        s3.changes
            .push("+ ConfigMap/default/demo-config (1) created".into());
        s3.diffs.push(ObjectDiff {
            op: "created".into(),
            object: "ConfigMap/default/demo-config".into(),
            resource_version: Some("1".into()),
            fields: vec![FieldChange {
                path: "data.message".into(),
                before: None,
                after: Some("\"<b>hello</b>\"".into()),
            }],
        });
        s3.matches = Some(true);
        let mut s4 = step(4, "fault", "the controller crashes and restarts");
        s4.messages
            .push(msg("fault", "controller", "signal", "crash and restart"));
        let s5 = step(
            5,
            "controller",
            "reconcile step: the reconcile ends (error)",
        );
        Trace {
            kind: "lasso".into(),
            prefix: vec![s0, s1, s2, s3, s4],
            cycle: vec![s5],
        }
    }

    #[test]
    fn escape_covers_the_five_characters() {
        assert_eq!(
            escape(r#"<a href="x" title='y'>&amp;</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;amp;&lt;/a&gt;"
        );
        assert_eq!(escape("plain text: ok"), "plain text: ok");
    }

    #[test]
    fn report_text_is_escaped_everywhere() {
        let mut t = lasso();
        t.prefix[2].action = "<script>alert('x')</script>".into();
        t.prefix[2].messages[0].label = "Get \"<img src=x onerror=alert(1)>\"".into();
        let mut r = report(vec![property("violated", Some(t))]);
        r.controller = "demo<script>".into();
        r.assumptions.push("a & b < c".into());
        let html = render_html(&r);
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(!html.contains("demo<script>"));
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"));
        assert!(html.contains("a &amp; b &lt; c"));
        // diff values (JSON strings with markup) are escaped too
        assert!(html.contains("&quot;&lt;b&gt;hello&lt;/b&gt;&quot;"));
        // exactly one script element: the inlined one
        assert_eq!(html.matches("<script>").count(), 1);
    }

    #[test]
    fn the_page_is_self_contained() {
        let html = render_html(&report(vec![property("violated", Some(lasso()))]));
        for needle in ["http://", "https://", "<link", "src=", "@import"] {
            assert!(!html.contains(needle), "{needle} in the page");
        }
        assert!(html.contains(CSS.lines().nth(2).unwrap()));
        assert!(html.contains("data-js"), "the script is inlined");
    }

    #[test]
    fn a_lasso_has_its_cycle_marked_and_repeated() {
        let html = render_html(&report(vec![property("violated", Some(lasso()))]));
        assert!(html.contains("data-kind=\"lasso\" data-steps=\"6\" data-cycle=\"1\""));
        assert!(html.contains("class=\"banner cycle-start\" data-cycle-start=\"4\""));
        assert!(html.contains("class=\"cycle\" data-cycle-start=\"4\" data-cycle-len=\"1\""));
        assert!(html.contains("class=\"cycle-repeat\""));
        // the cycle's step sits inside the cycle frame, after the start banner
        let start = html.find("banner cycle-start").unwrap();
        let frame = html.find("class=\"cycle\" ").unwrap();
        let s5 = html.find("id=\"cx0-s5\"").unwrap();
        let end = html.find("banner cycle-end").unwrap();
        assert!(start < frame && frame < s5 && s5 < end);
        // and is drawn again (without an id) in the repetition
        let repeat = &html[html.find("class=\"cycle-repeat\"").unwrap()..];
        assert!(repeat.contains("class=\"row repeat\""));
        assert!(!repeat[..repeat.find("banner forever").unwrap()].contains("id=\"cx0-s"));
        // every step once, with its number
        assert_eq!(html.matches("class=\"row step").count(), 6);
    }

    #[test]
    fn the_step_where_the_desired_state_last_held_is_marked() {
        let html = render_html(&report(vec![property("violated", Some(lasso()))]));
        assert_eq!(html.matches("class=\"row step last-desired\"").count(), 1);
        assert!(html.contains("class=\"row step last-desired\" id=\"cx0-s3\""));
        assert!(html.contains("desired state last held: never again after this step"));
        // no step matched: a banner says so
        let mut t = lasso();
        t.prefix[3].matches = Some(false);
        let html = render_html(&report(vec![property("violated", Some(t))]));
        assert!(!html.contains("class=\"row step last-desired"));
        assert!(html.contains("never matched the custom resource"));
    }

    #[test]
    fn arrows_go_from_lane_to_lane() {
        let html = render_html(&report(vec![property("violated", Some(lasso()))]));
        assert_eq!(html.matches("class=\"lane-head").count(), LANES.len());
        assert!(html.contains(
            "class=\"msg request ltr\" data-from=\"controller\" data-to=\"api-server\" data-kind=\"request\" style=\"--lo:1;--hi:2;"
        ));
        assert!(html.contains(
            "class=\"msg response rtl\" data-from=\"api-server\" data-to=\"controller\" data-kind=\"response\" style=\"--lo:1;--hi:2;"
        ));
        assert!(html.contains("data-from=\"fault\" data-to=\"controller\""));
        // the diff is expandable and names the object and field
        assert!(html.contains("<details class=\"changes\" data-changes=\"1\">"));
        assert!(html.contains("data-op=\"created\" data-object=\"ConfigMap/default/demo-config\""));
        assert!(html.contains("<td class=\"path\">data.message</td>"));
    }

    #[test]
    fn a_path_marks_its_violating_step() {
        let mut t = lasso();
        t.kind = "path".into();
        t.cycle.clear();
        let html = render_html(&report(vec![property("violated", Some(t))]));
        assert!(!html.contains("banner cycle-start"));
        assert!(!html.contains("class=\"cycle-repeat\""));
        assert!(html.contains("class=\"row step violating\" id=\"cx0-s4\""));
        assert!(html.contains("esr is violated here"));
    }

    #[test]
    fn a_run_that_holds_shows_results_and_coverage() {
        let html = render_html(&report(vec![property("holds", None)]));
        assert!(html.contains("data-verdict=\"holds\""));
        assert!(html.contains("every property holds"));
        assert!(html.contains("<tr class=\"v-holds\" data-property=\"esr\""));
        assert!(html.contains("1,234,567"));
        assert!(html.contains("1.50 s"));
        assert!(html.contains("3.0 MiB"));
        assert!(html.contains("1/1 specs alive, desired state reached for 1/1"));
        assert!(html.contains("<td>specs alive 1/1, desired state 1/1</td>"));
        assert!(html.contains("<section id=\"coverage\">"));
        assert!(html.contains("<section id=\"scope\">"));
        assert!(html.contains("one controller process"));
        assert!(!html.contains("section class=\"counterexample\""));
    }

    #[test]
    fn a_configuration_error_is_shown() {
        let mut r = report(Vec::new());
        r.config_error = Some("spec #0 is rejected".into());
        r.coverage = None;
        let html = render_html(&r);
        assert!(html.contains("data-verdict=\"config_error\""));
        assert!(html.contains("Configuration error:</strong> spec #0 is rejected"));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(2_007_148), "2,007,148");
    }
}
