//! Per-property verdicts, step (transition) properties, and the fingerprint
//! collision bound carried by every result.
use anvil_checker::*;

/// A counter `0..=9`: `Inc` (+1, weakly fair), `Jump` (+2, unfair) and
/// `Reset` (to 0, unfair; a stuttering step at 0).
struct Counter;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Act {
    Inc,
    Jump,
    Reset,
}

impl Machine for Counter {
    type State = u8;
    type Action = Act;
    type FairnessKey = &'static str;
    fn init_states(&self) -> Vec<u8> {
        vec![0]
    }
    fn actions(&self, _s: &u8, out: &mut Vec<Act>) {
        out.extend([Act::Inc, Act::Jump, Act::Reset]);
    }
    fn next_state(&self, s: &u8, a: &Act) -> Option<u8> {
        match a {
            Act::Inc => (*s < 9).then_some(s + 1),
            Act::Jump => (*s < 8).then_some(s + 2),
            Act::Reset => Some(0),
        }
    }
    fn fairness(&self, _s: &u8, a: &Act) -> Fairness<&'static str> {
        match a {
            Act::Inc => Fairness::Weak("inc"),
            _ => Fairness::Unfair,
        }
    }
}

fn below(n: u8) -> Property<Counter> {
    Property::always(format!("below {n}"), move |s: &u8| *s < n)
}
fn never_decreases() -> Property<Counter> {
    Property::always_step("never decreases", |s: &u8, t: &u8| t >= s)
}
fn leaves_zero() -> Property<Counter> {
    Property::eventually("leaves 0", |s: &u8| *s >= 1)
}

fn path(cx: &Counterexample<Counter>) -> &[Step<Counter>] {
    match cx {
        Counterexample::Path { steps, .. } => steps,
        _ => panic!("expected a path: {cx:?}"),
    }
}

fn violated<'r>(r: &'r CheckResult<Counter>, name: &str) -> &'r Counterexample<Counter> {
    match r.property(name) {
        Some(PropertyStatus::Violated(cx)) => {
            assert_eq!(cx.property(), name);
            cx
        }
        s => panic!("{name} should be violated: {s:?}"),
    }
}

fn all_properties() -> Vec<Property<Counter>> {
    vec![
        below(3),
        below(6),
        leaves_zero(),
        below(10),
        never_decreases(),
    ]
}

#[test]
fn every_property_gets_its_own_verdict() {
    let props = all_properties();
    for threads in [1, 2] {
        let r = Checker::new(&Counter)
            .threads(threads)
            .properties(props.clone())
            .run();
        assert!(r.complete, "{r:?}");
        assert!(r.stopped.is_none());
        assert_eq!(r.states, 10);
        assert_eq!(r.properties.len(), 5);
        // two safety violations at different depths, each with its own
        // shortest counterexample: 0 -> 2 -> 3 and 0 -> 2 -> 4 -> 6
        let cx3 = violated(&r, "below 3");
        let s3: Vec<u8> = path(cx3).iter().map(|s| s.state).collect();
        assert_eq!(s3.len(), 3, "{cx3:?}");
        assert_eq!(s3[2], 3);
        let cx6 = violated(&r, "below 6");
        let s6: Vec<u8> = path(cx6).iter().map(|s| s.state).collect();
        assert_eq!(s6, vec![0, 2, 4, 6], "{cx6:?}");
        // the step property: shortest is 0 -> 1 or 2 -> 0 by Reset (Reset
        // at 0 is a stuttering step and does not count)
        let cxs = violated(&r, "never decreases");
        let ss = path(cxs);
        assert_eq!(ss.len(), 3, "{cxs:?}");
        assert_eq!(ss[2].action, Some(Act::Reset));
        assert_eq!(ss[2].state, 0);
        // the liveness property and the last invariant hold
        assert!(matches!(
            r.property("leaves 0"),
            Some(PropertyStatus::Holds)
        ));
        assert!(matches!(
            r.property("below 10"),
            Some(PropertyStatus::Holds)
        ));
        // the overall verdict carries the first violated property in order
        assert_eq!(r.counterexample().unwrap().property(), "below 3");
        assert!(!r.holds());
        let names: Vec<&str> = r.violations().map(|(n, _)| n).collect();
        assert_eq!(names, ["below 3", "below 6", "never decreases"]);
        for (p, (name, status)) in props.iter().zip(&r.properties) {
            assert_eq!(&p.name, name);
            if let PropertyStatus::Violated(cx) = status {
                validate(&Counter, p, cx).unwrap_or_else(|e| panic!("{name}: {e}\n{cx:?}"));
            }
        }
    }
}

#[test]
fn safety_only_run_continues_past_a_violation() {
    // one invariant violated, one holding: the search goes on to the end,
    // the holding one is decided Holds
    for threads in [1, 2] {
        let r = Checker::new(&Counter)
            .threads(threads)
            .property(below(6))
            .property(below(10))
            .run();
        assert!(r.complete);
        assert_eq!(r.states, 10);
        assert_eq!(path(violated(&r, "below 6")).len(), 4);
        assert!(matches!(
            r.property("below 10"),
            Some(PropertyStatus::Holds)
        ));
    }
}

#[test]
fn search_stops_once_every_property_is_violated() {
    for threads in [1, 2] {
        let r = Checker::new(&Counter)
            .threads(threads)
            .property(below(3))
            .property(below(6))
            .property(never_decreases())
            .run();
        // 8 and 9 are deeper than 6: never expanded
        assert!(!r.complete);
        assert!(r.states < 10, "{r:?}");
        assert!(
            r.stopped.as_deref().unwrap().contains("every property"),
            "{:?}",
            r.stopped
        );
        assert_eq!(path(violated(&r, "below 3")).len(), 3);
        assert_eq!(path(violated(&r, "below 6")).len(), 4);
        assert_eq!(path(violated(&r, "never decreases")).len(), 3);
    }
}

#[test]
fn limit_keeps_violations_and_leaves_the_rest_unknown() {
    // BFS: {0} -> {1, 2} -> {3, 4} (3 violates "below 3") -> {5, 6}: the
    // sixth state is inserted while expanding depth 2, so depth 3 is never
    // expanded
    for (threads, live) in [(1, false), (1, true), (2, true)] {
        let mut c = Checker::new(&Counter)
            .threads(threads)
            .state_limit(6)
            .property(below(3))
            .property(below(6))
            .property(never_decreases());
        if live {
            c = c.property(leaves_zero());
        }
        let r = c.run();
        assert!(!r.complete);
        assert!(r.stopped.as_deref().unwrap().contains("state limit"));
        assert_eq!(path(violated(&r, "below 3")).len(), 3);
        // "never decreases" is violated by Reset from 1 or 2 (depth 1)
        assert_eq!(path(violated(&r, "never decreases")).len(), 3);
        assert!(matches!(
            r.property("below 6"),
            Some(PropertyStatus::Unknown)
        ));
        if live {
            assert!(matches!(
                r.property("leaves 0"),
                Some(PropertyStatus::Unknown)
            ));
        }
        assert_eq!(r.counterexample().unwrap().property(), "below 3");
    }
}

#[test]
fn step_property_counterexample_is_shortest_and_valid_in_both_modes() {
    let p = never_decreases();
    for (threads, live) in [(1, false), (2, false), (1, true), (2, true)] {
        let mut c = Checker::new(&Counter).threads(threads).property(p.clone());
        if live {
            // a liveness property switches the engine to graph mode
            c = c.property(leaves_zero());
        }
        let r = c.run();
        let cx = r.counterexample().expect("violated");
        let steps = path(cx);
        assert_eq!(steps.len(), 3, "{cx:?}");
        assert!(steps[1].state > steps[2].state);
        assert_eq!(steps[2].action, Some(Act::Reset));
        validate(&Counter, &p, cx).unwrap();
        assert_eq!(r.complete, live);
    }
}

#[test]
fn step_properties_ignore_stuttering_steps() {
    // Reset at 0 is an enabled action whose successor equals its source:
    // a stuttering step, which satisfies [A]_s whatever A says
    let p = Property::always_step("every step moves", |s: &u8, t: &u8| s != t);
    for live in [false, true] {
        let mut c = Checker::new(&Counter).property(p.clone());
        if live {
            c = c.property(leaves_zero());
        }
        let r = c.run();
        assert!(r.holds(), "{:?}", r.verdict);
        assert!(r.complete);
    }
    // a step property that holds on every non-stuttering step
    let r = Checker::new(&Counter)
        .property(Property::always_step(
            "moves by at most 2 up",
            |s: &u8, t: &u8| *t <= s + 2,
        ))
        .run();
    assert!(r.holds());
}

#[test]
fn step_property_shape() {
    let p = never_decreases();
    assert!(p.is_safety());
    assert_eq!(p.kind_name(), "[][A(s,s')]_s");
    assert!(p.predicates().is_empty());
    assert!(p.step_predicate().is_some_and(|a| !a(&2, &1)));
    assert!(matches!(p.clone().kind, PropertyKind::AlwaysStep(_)));
    assert!(below(3).step_predicate().is_none());
}

fn step(action: Option<Act>, state: u8) -> Step<Counter> {
    Step { action, state }
}

#[test]
fn validator_checks_step_counterexamples() {
    let p = never_decreases();
    let cx = |steps: Vec<Step<Counter>>| Counterexample::Path {
        property: p.name.clone(),
        steps,
    };
    // genuine
    let ok = cx(vec![
        step(None, 0),
        step(Some(Act::Inc), 1),
        step(Some(Act::Reset), 0),
    ]);
    validate(&Counter, &p, &ok).unwrap();
    // the last step satisfies the predicate
    let e = validate(
        &Counter,
        &p,
        &cx(vec![step(None, 0), step(Some(Act::Inc), 1)]),
    )
    .unwrap_err();
    assert!(e.contains("satisfies"), "{e}");
    // no step at all
    assert!(validate(&Counter, &p, &cx(vec![step(None, 0)])).is_err());
    // a stuttering last step never violates a step property
    let moves = Property::always_step("every step moves", |s: &u8, t: &u8| s != t);
    let e = validate(
        &Counter,
        &moves,
        &cx(vec![step(None, 0), step(Some(Act::Reset), 0)]),
    )
    .unwrap_err();
    assert!(e.contains("stuttering"), "{e}");
    // a step the machine cannot take
    assert!(
        validate(
            &Counter,
            &p,
            &cx(vec![
                step(None, 0),
                step(Some(Act::Inc), 1),
                step(Some(Act::Inc), 0),
            ]),
        )
        .is_err()
    );
    // a lasso never violates a step property
    let lasso = Counterexample::Lasso {
        property: p.name.clone(),
        prefix: vec![step(None, 0)],
        cycle: vec![step(None, 0)],
    };
    assert!(validate(&Counter, &p, &lasso).is_err());
    // a step-property path does not violate an invariant it satisfies
    assert!(validate(&Counter, &below(3), &ok).is_err());
}

#[test]
fn result_carries_the_collision_bound() {
    let r = Checker::new(&Counter)
        .property(below(10))
        .property(below(3))
        .run();
    assert_eq!(r.states, 10);
    assert_eq!(
        r.collision_probability,
        fingerprint::collision_probability(10)
    );
    assert!(r.collision_probability > 0.0 && r.collision_probability < 1e-15);
    let j = r.summary_json();
    let key = "\"collision_probability\":";
    let at = j.find(key).expect(&j) + key.len();
    let v: f64 = j[at..].trim_end_matches('}').parse().expect(&j);
    assert_eq!(v, r.collision_probability);
    assert!(
        j.contains(r#""properties":[{"name":"below 10","status":"holds"},{"name":"below 3","status":"violated"}]"#),
        "{j}"
    );
    assert!(j.contains(r#""verdict":"violated:below 3""#), "{j}");
    // the bound grows quadratically and saturates at 1
    assert_eq!(fingerprint::collision_probability(0), 0.0);
    assert!((fingerprint::collision_probability(1 << 20) - 2f64.powi(40 - 65)).abs() < 1e-30);
    assert_eq!(fingerprint::collision_probability(u64::MAX), 1.0);
}
