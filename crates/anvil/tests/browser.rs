//! `anvil verify --html` in a real browser: headless Chromium (Debian's `chromium` package,
//! provided by `scripts/provision-chromium.sh`, which `scripts/test.sh` runs too) loads the
//! report of broken variants and the test reads the DOM after the page's script ran: the
//! number of steps, the lanes, the cycle marker, the arrows, the diffs, the keyboard
//! navigation. Screenshots and a PDF print are kept under `target/browser-artifacts/`.
//!
//! Without Chromium (and no way to install it) every test here FAILS with the command to run;
//! none is skipped.
//!
//! Every broken variant of the registry gets its report rendered and checked. One runs on a
//! smaller scope in debug builds (its default scope in release), one that has the same bug:
//! `zookeeper-569` on its crash-only scope.

use anvil::registry;
use anvil::report::write_html;
use anvil_cluster_model::esr::{CheckOptions, Report};
use anvil_cluster_model::render::{LANES, Trace, TraceStep, lane_of};
use anvil_cluster_model::{Faults, Scope};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// `target/browser-artifacts/` (next to the test's `target/tmp`).
fn artifacts() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp
        .parent()
        .map(|t| t.join("browser-artifacts"))
        .unwrap_or_else(|| tmp.join("browser-artifacts"));
    std::fs::create_dir_all(&dir).expect("create target/browser-artifacts");
    dir
}

/// The browser binary, provisioned once per test binary. Panics (never skips) when there is
/// none.
fn chromium() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let script = workspace().join("scripts/provision-chromium.sh");
        let out = Command::new("bash")
            .arg(&script)
            .stderr(Stdio::inherit())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        let path = String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .unwrap_or("")
            .trim()
            .to_string();
        assert!(
            out.status.success() && !path.is_empty(),
            "headless Chromium is required for the browser test and could not be provided: \
             run `scripts/provision-chromium.sh` (as root it installs Debian's `chromium`), or \
             set CHROME to a Chromium binary ({} exited with {})",
            script.display(),
            out.status
        );
        PathBuf::from(path)
    })
}

/// Runs headless Chromium with `args` then `url`; returns its stdout. Panics on failure or
/// after two minutes.
fn run_chromium(args: &[String], url: &str) -> String {
    static PROFILE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = PROFILE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let profile = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("chromium-profile-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let out_path = profile.with_extension("out");
    let err_path = profile.with_extension("err");
    let mut child = Command::new(chromium())
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--hide-scrollbars",
            "--allow-file-access-from-files",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(url)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromium().display()));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for chromium") {
            break s;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "chromium {args:?} {url} did not finish within 120 s; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&profile);
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    assert!(
        status.success(),
        "chromium {args:?} {url} failed ({status}); stderr:\n{stderr}"
    );
    stdout
}

fn file_url(p: &Path) -> String {
    format!("file://{}", p.display())
}

/// The DOM after the page's scripts ran.
fn dump_dom(page: &Path, fragment: &str) -> String {
    let dom = run_chromium(
        &["--dump-dom".into()],
        &format!("{}{fragment}", file_url(page)),
    );
    assert!(
        dom.contains("data-js=\"ready\""),
        "the page's script did not run to its end (no html[data-js=ready]):\n{}",
        &dom[..dom.len().min(2000)]
    );
    dom
}

fn screenshot(page: &Path, fragment: &str, png: &Path, size: (u32, u32)) {
    let _ = std::fs::remove_file(png);
    run_chromium(
        &[
            format!("--screenshot={}", png.display()),
            format!("--window-size={},{}", size.0, size.1),
        ],
        &format!("{}{fragment}", file_url(page)),
    );
    let bytes =
        std::fs::read(png).unwrap_or_else(|e| panic!("no screenshot {}: {e}", png.display()));
    assert!(
        bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "{} is not a PNG",
        png.display()
    );
    assert!(
        bytes.len() > 10_000,
        "{} is suspiciously small",
        png.display()
    );
}

/// Text as Chromium serialises a text node (`&`, `<`, `>`, no-break space).
fn dom_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\u{a0}', "&nbsp;")
}

/// Value as Chromium serialises an attribute (`&`, `"`, `<`, `>`, no-break space).
fn dom_attr(s: &str) -> String {
    dom_text(s).replace('"', "&quot;")
}

/// The serialised row of step `step` of counterexample `cx` (up to the next row).
fn step_html(dom: &str, cx: usize, step: usize) -> &str {
    let id = format!("id=\"cx{cx}-s{step}\"");
    let at = dom
        .find(&id)
        .unwrap_or_else(|| panic!("no step {step} of counterexample {cx} in the DOM"));
    let rest = &dom[at..];
    let end = rest[id.len()..]
        .find("<div class=\"row")
        .or_else(|| rest[id.len()..].find("<div class=\"banner"))
        .map(|e| e + id.len())
        .unwrap_or(rest.len());
    &rest[..end]
}

/// The classes of the row of step `step` of counterexample `cx`.
fn step_classes(dom: &str, cx: usize, step: usize) -> &str {
    let at = dom
        .find(&format!("id=\"cx{cx}-s{step}\""))
        .unwrap_or_else(|| panic!("no step {step} of counterexample {cx} in the DOM"));
    let open = dom[..at].rfind("<div class=\"").expect("the row's tag") + "<div class=\"".len();
    &dom[open..open + dom[open..].find('"').unwrap()]
}

fn all_steps(t: &Trace) -> Vec<&TraceStep> {
    t.prefix.iter().chain(&t.cycle).collect()
}

/// The counterexample `t` of property `prop` is the `cx`-th section of the DOM, complete.
fn check_counterexample(dom: &str, cx: usize, prop: &str, t: &Trace) {
    let steps = all_steps(t);
    let section = format!(
        "<section class=\"counterexample\" id=\"cx{cx}\" data-property=\"{prop}\" data-kind=\"{}\" data-steps=\"{}\" data-cycle=\"{}\">",
        t.kind,
        steps.len(),
        t.cycle.len()
    );
    assert!(dom.contains(&section), "no {section}");
    // every step once, in order
    let ids: Vec<usize> = dom
        .match_indices(&format!("id=\"cx{cx}-s"))
        .map(|(i, m)| {
            let rest = &dom[i + m.len()..];
            rest[..rest.find('"').unwrap()].parse().unwrap()
        })
        .collect();
    let want: Vec<usize> = steps.iter().map(|s| s.step).collect();
    assert_eq!(ids, want, "{prop}: the DOM's steps");
    for st in &steps {
        let row = step_html(dom, cx, st.step);
        assert!(
            row.contains(&format!("data-step=\"{}\"", st.step)),
            "{prop} step {}",
            st.step
        );
        // the whole action text
        assert!(
            row.contains(&format!(
                "<span class=\"action\">{}</span>",
                dom_text(&st.action)
            )),
            "{prop} step {}: action {:?} not in\n{row}",
            st.step,
            st.action
        );
        // one arrow per message, from its lane to its lane
        let arrows = row.matches("<div class=\"msg ").count();
        let drawable = st.messages.iter().filter(|m| m.from != m.to).count();
        assert_eq!(
            arrows, drawable,
            "{prop} step {}: arrows in\n{row}",
            st.step
        );
        for m in &st.messages {
            assert!(
                row.contains(&format!(
                    "data-from=\"{}\" data-to=\"{}\" data-kind=\"{}\"",
                    m.from, m.to, m.kind
                )),
                "{prop} step {}: no arrow {m:?}",
                st.step
            );
        }
        // its lane
        if let Some(l) = st.lane.as_deref().or_else(|| lane_of(&st.actor)) {
            assert!(row.contains(&format!("data-lane=\"{l}\"")));
        }
        // every object change, every changed field
        if st.diffs.is_empty() {
            assert!(st.changes.is_empty(), "structured diffs missing");
        } else {
            assert!(
                row.contains(&format!(
                    "<details class=\"changes\" data-changes=\"{}\"",
                    st.diffs.len()
                )),
                "{prop} step {}: no expandable diff",
                st.step
            );
        }
        for d in &st.diffs {
            assert!(
                row.contains(&format!(
                    "data-op=\"{}\" data-object=\"{}\"",
                    d.op,
                    dom_attr(&d.object)
                )),
                "{prop} step {}: no diff of {}",
                st.step,
                d.object
            );
            for f in &d.fields {
                assert!(
                    row.contains(&format!("<td class=\"path\">{}</td>", dom_text(&f.path))),
                    "{prop} step {}: no field {} of {}",
                    st.step,
                    f.path,
                    d.object
                );
            }
        }
    }
    if t.kind == "lasso" {
        let start = t.prefix.last().unwrap().step;
        assert!(
            dom.contains(&format!(
                "class=\"banner cycle-start\" data-cycle-start=\"{start}\""
            )),
            "{prop}: no cycle-start marker"
        );
        let frame = format!(
            "<div class=\"cycle\" data-cycle-start=\"{start}\" data-cycle-len=\"{}\">",
            t.cycle.len()
        );
        let at = dom.find(&frame).unwrap_or_else(|| panic!("no {frame}"));
        let inside = &dom[at..at + dom[at..].find("banner cycle-end").expect("cycle end")];
        for st in &t.cycle {
            assert!(
                inside.contains(&format!("id=\"cx{cx}-s{}\"", st.step)),
                "{prop}: cycle step {} outside the cycle frame",
                st.step
            );
        }
        let repeat = &dom[at..];
        let repeat = &repeat[repeat
            .find("class=\"cycle-repeat\"")
            .expect("the cycle's repetition")..];
        let repeat = &repeat[..repeat.find("banner forever").expect("forever")];
        assert_eq!(
            repeat.matches("class=\"row repeat").count(),
            t.cycle.len(),
            "{prop}: the cycle drawn again"
        );
    }
    // the step after which the desired state never held again, if the trace says
    if let Some(last) = steps.iter().rev().find(|s| s.matches == Some(true)) {
        assert!(
            step_classes(dom, cx, last.step)
                .split(' ')
                .any(|c| c == "last-desired"),
            "{prop}: step {} not marked as where the desired state last held",
            last.step
        );
    }
}

/// Verifies `name` in process (with `scope` or its default) and checks its report in
/// Chromium: every counterexample complete. Returns the report and the page.
fn render_variant(name: &str, scope: Option<Scope>) -> (Report, PathBuf) {
    let c = registry::find(name).unwrap_or_else(|| panic!("{name} is not registered"));
    let opts = CheckOptions {
        stop_at_first_violation: true,
        ..Default::default()
    };
    let r = (c.check)(scope.unwrap_or_else(c.scope), &opts);
    assert!(r.violated(), "{name} should be violated: {:?}", r.results);
    let page = artifacts().join(format!("{name}.html"));
    write_html(&page, &r).expect("write the report");
    let dom = dump_dom(&page, "");
    assert!(dom.contains("data-verdict=\"violated\""));
    // lanes: one per actor class, named
    for l in LANES {
        assert!(
            dom.contains(&format!(
                "data-lane=\"{l}\" style=\"--lane-color:var(--lane-{l})\""
            )),
            "{name}: no lane {l}"
        );
    }
    assert_eq!(
        dom.matches("<div class=\"lane-head").count() % LANES.len(),
        0
    );
    // results table: one row per property
    for p in &r.results {
        assert!(
            dom.contains(&format!(
                "data-property=\"{}\" data-verdict=\"{}\"",
                p.property, p.verdict
            )),
            "{name}: no result row for {}",
            p.property
        );
    }
    let cxs: Vec<_> = r
        .results
        .iter()
        .filter_map(|p| p.counterexample.as_ref().map(|t| (p, t)))
        .collect();
    assert!(!cxs.is_empty(), "{name}: no counterexample");
    assert_eq!(
        dom.matches("<section class=\"counterexample\"").count(),
        cxs.len()
    );
    for (i, (p, t)) in cxs.iter().enumerate() {
        assert_eq!(p.counterexample_validated, Some(true), "{name}");
        check_counterexample(&dom, i, &p.property, t);
    }
    // (Headless Chromium draws nothing in a screenshot of a scrolled page: a window tall
    // enough for the first steps instead.)
    screenshot(
        &page,
        "",
        &artifacts().join(format!("{name}.png")),
        (1400, 2400),
    );
    (r, page)
}

/// The counterexample's steps and what the page shows of them, the keyboard navigation, the
/// print stylesheet, and the screenshots (`target/browser-artifacts/report*.png`) and the
/// PDF print (`report.pdf`).
#[test]
fn the_report_of_a_broken_variant_in_chromium() {
    let name = "demo-alreadyexists-fatal";
    let (r, page) = render_variant(name, None);
    let p = r.result("esr").expect("esr");
    assert_eq!(p.verdict, "violated");
    let t = p.counterexample.as_ref().expect("a counterexample");
    assert_eq!(t.kind, "lasso");
    let steps = all_steps(t);
    assert!(steps.len() > 5);
    let dom = dump_dom(&page, "");
    // the numbers, once more, spelled out: steps, lanes, the cycle, the diffs
    assert_eq!(dom.matches("<div class=\"row step").count(), steps.len());
    assert_eq!(dom.matches("<div class=\"lane-head").count(), LANES.len());
    assert_eq!(dom.matches("class=\"banner cycle-start\"").count(), 1);
    assert!(dom.contains("The cycle starts in the state after step"));
    for lane in ["user", "controller", "api-server"] {
        assert!(
            dom.contains(&format!("<div class=\"lane-head\" data-lane=\"{lane}\"")),
            "the {lane} lane is used"
        );
    }
    assert!(dom.contains("data-op=\"created\" data-object=\"ConfigMap/"));
    assert!(dom.contains("<td class=\"path\">metadata.name</td>"));
    assert!(
        dom.contains("class=\"msg request ltr\" data-from=\"controller\" data-to=\"api-server\"")
    );
    assert!(
        dom.contains("class=\"msg response rtl\" data-from=\"api-server\" data-to=\"controller\"")
    );
    assert!(
        dom.contains("data-from=\"fault\" data-to=\"controller\""),
        "the crash (or the failure) that causes the bug is drawn"
    );
    assert!(
        steps.iter().any(|s| s.matches.is_some()),
        "the trace says where the desired state held"
    );
    // nothing is selected before a key is pressed
    assert!(!dom.contains("data-current-step="));

    // keyboard: j j j k selects the second step; the status line says where
    let dom = dump_dom(&page, "#keys=jjjk");
    let second = steps[1].step;
    assert!(
        dom.contains(&format!("data-current-step=\"cx0-s{second}\"")),
        "j j j k should select step {second}"
    );
    assert_eq!(dom.matches(" current\"").count(), 1, "one current step");
    assert!(dom.contains(&format!("id=\"cx0-s{second}\"")));
    assert!(
        step_classes(&dom, 0, second)
            .split(' ')
            .any(|c| c == "current"),
        "the selected row is highlighted"
    );
    assert!(dom.contains(&format!("step {second} (2 of {})", steps.len())));
    // G selects the last step, c the cycle's first, x opens every diff
    let dom = dump_dom(&page, "#keys=G");
    let last = steps.last().unwrap().step;
    assert!(dom.contains(&format!("data-current-step=\"cx0-s{last}\"")));
    let dom = dump_dom(&page, "#keys=jc");
    assert!(dom.contains(&format!("data-current-step=\"cx0-s{}\"", t.cycle[0].step)));
    let dom = dump_dom(&page, "#keys=x");
    let details = dom.matches("<details class=\"changes\"").count();
    assert!(details > 0);
    let open = dom
        .match_indices("<details class=\"changes\"")
        .filter(|(i, _)| {
            let tag = &dom[*i..*i + dom[*i..].find('>').unwrap()];
            tag.contains(" open")
        })
        .count();
    assert_eq!(open, details, "x opens every step's changes");
    // a deep link selects its step
    let dom = dump_dom(&page, &format!("#cx0-s{last}"));
    assert!(dom.contains(&format!("data-current-step=\"cx0-s{last}\"")));

    // screenshots: the top of the page and the sequence diagram
    let out = artifacts();
    screenshot(&page, "", &out.join("report-top.png"), (1400, 1000));
    screenshot(&page, "", &out.join("report.png"), (1280, 2200));
    // it prints: a PDF with every diff open (the print stylesheet)
    let pdf = out.join("report.pdf");
    let _ = std::fs::remove_file(&pdf);
    run_chromium(
        &[
            format!("--print-to-pdf={}", pdf.display()),
            "--no-pdf-header-footer".into(),
        ],
        &file_url(&page),
    );
    let bytes = std::fs::read(&pdf).expect("the PDF");
    assert!(bytes.starts_with(b"%PDF"), "not a PDF");
    assert!(bytes.len() > 20_000, "PDF suspiciously small");
    println!("artifacts in {}", out.display());
}

/// A run that holds: the results and the coverage, no counterexample.
#[test]
fn the_report_of_a_run_that_holds_in_chromium() {
    let c = registry::find("demo").expect("demo");
    // a small scope: no faults, no edits
    let mut s = (c.scope)();
    s.max_edits = 0;
    s.max_deletes = 0;
    s.specs.truncate(1);
    s.faults = Faults::default();
    let r = (c.check)(s, &CheckOptions::default());
    assert!(r.holds(), "{:?}", r.results);
    let page = artifacts().join("demo-holds.html");
    write_html(&page, &r).expect("write");
    let dom = dump_dom(&page, "#keys=jjx");
    assert!(dom.contains("data-verdict=\"holds\""));
    for p in &r.results {
        assert!(dom.contains(&format!(
            "data-property=\"{}\" data-verdict=\"holds\"",
            p.property
        )));
    }
    assert!(dom.contains("<section id=\"coverage\">"));
    assert!(dom.contains("1/1 specs alive, desired state reached for 1/1"));
    assert!(dom.contains("<section id=\"scope\">"));
    assert!(dom.contains("<section id=\"assumptions\">"));
    assert!(!dom.contains("<section class=\"counterexample\""));
    assert!(!dom.contains("data-current-step="), "no step to select");
    screenshot(&page, "", &artifacts().join("demo-holds.png"), (1400, 900));
}

/// The command line: `anvil verify <controller> --html FILE` writes the page next to the
/// usual output and keeps its exit code; a file that cannot be written is a usage error.
#[test]
fn the_html_flag_writes_the_page() {
    let page = artifacts().join("cli-demo-no-done-on-failure.html");
    let _ = std::fs::remove_file(&page);
    let out = Command::new(env!("CARGO_BIN_EXE_anvil"))
        .args([
            "verify",
            "demo-no-done-on-failure",
            "--no-progress",
            "--html",
        ])
        .arg(&page)
        .output()
        .expect("run anvil");
    assert_eq!(out.status.code(), Some(1), "violated");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("counterexample (lasso"), "{text}");
    let dom = dump_dom(&page, "");
    assert!(dom.contains("data-verdict=\"violated\""));
    assert!(dom.contains("class=\"banner cycle-start\""));
    let out = Command::new(env!("CARGO_BIN_EXE_anvil"))
        .args([
            "verify",
            "demo-no-done-on-failure",
            "--no-progress",
            "--html",
        ])
        .arg(artifacts().join("no-such-folder/report.html"))
        .output()
        .expect("run anvil");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write the HTML report"));
}

/// The broken variants of the registry (the description starts with "broken").
const BROKEN: &[&str] = &[
    "demo-stale-update",
    "demo-alreadyexists-fatal",
    "demo-adopt-orphan",
    "demo-no-done-on-failure",
    "demo-shared-config",
    "zookeeper-569",
    "zookeeper-adopt",
    "rabbitmq-stale-scale-down",
    "rabbitmq-cookie-rotation",
    "rabbitmq-config-no-roll",
    "fluent-early-daemonset",
    "fluent-config-writes-daemonset",
];

#[test]
fn every_broken_variant_has_a_browser_test() {
    let registered: Vec<&str> = registry::controllers()
        .iter()
        .filter(|c| c.description.starts_with("broken"))
        .map(|c| c.name)
        .collect();
    assert_eq!(
        registered, BROKEN,
        "a broken variant was added or removed: give it a test below"
    );
}

#[test]
fn demo_stale_update_renders() {
    render_variant("demo-stale-update", None);
}

#[test]
fn demo_adopt_orphan_renders() {
    render_variant("demo-adopt-orphan", None);
}

/// Also the README's picture (`docs/report.png` is `target/browser-artifacts/readme.png`
/// quantised with `pngquant --quality 70-90`): the report with the coverage, scope and
/// assumptions sections folded away so that the results and the whole sequence diagram fit.
#[test]
fn demo_no_done_on_failure_renders() {
    let (_, page) = render_variant("demo-no-done-on-failure", None);
    let html = std::fs::read_to_string(&page).expect("the page");
    let compact = html.replacen(
        "</style>",
        "section#coverage, section#scope, section#assumptions, nav.toc { display: none; }\n</style>",
        1,
    );
    assert_ne!(compact, html);
    let readme = artifacts().join("readme.html");
    std::fs::write(&readme, compact).expect("write");
    dump_dom(&readme, "");
    screenshot(&readme, "", &artifacts().join("readme.png"), (1280, 1270));
}

#[test]
fn demo_shared_config_renders() {
    render_variant("demo-shared-config", None);
}

#[test]
fn zookeeper_569_renders() {
    // Its default scope takes minutes unoptimised; the crash-only scope has the same bug.
    let scope = cfg!(debug_assertions).then(|| {
        let mut s = anvil_zookeeper::verify::default_scope();
        s.max_edits = 0;
        s.specs.truncate(1);
        s.faults = Faults {
            crash: true,
            ..Faults::default()
        };
        s
    });
    render_variant("zookeeper-569", scope);
}

#[test]
fn zookeeper_adopt_renders() {
    // Its own scope (delete + re-create) in every build: 19,243 states with the model's eager
    // steps and the collector's judgement taken with its delete (about 700,000 before them).
    render_variant("zookeeper-adopt", None);
}

#[test]
fn rabbitmq_stale_scale_down_renders() {
    render_variant("rabbitmq-stale-scale-down", None);
}

#[test]
fn rabbitmq_cookie_rotation_renders() {
    render_variant("rabbitmq-cookie-rotation", None);
}

#[test]
fn rabbitmq_config_no_roll_renders() {
    render_variant("rabbitmq-config-no-roll", None);
}

/// Two controllers in one model (both controllers' steps are drawn in the controller lane).
#[test]
fn fluent_early_daemonset_renders() {
    render_variant("fluent-early-daemonset", None);
}

#[test]
fn fluent_config_writes_daemonset_renders() {
    render_variant("fluent-config-writes-daemonset", None);
}
