//! TEMPORARY (deleted after use): state counts with the old Rust mirror vs the CEL rules.
use anvil_cluster_model::esr::{self, CheckOptions};
use anvil_cluster_model::{KindInfo, KindRegistry};
use anvil_demo::verify::{default_scope, spec};
use anvil_demo::{DemoApp, DemoController};
use anvil_objects::{DynamicObject, Kind};

fn old_validate(o: &DynamicObject) -> Result<(), String> {
    let cr: DemoApp = o.to_typed().map_err(|e| e.to_string())?;
    if !(0..=10).contains(&cr.spec.replicas) {
        return Err("spec.replicas: replicas must be between 0 and 10".into());
    }
    Ok(())
}
fn old_transition(old: &DynamicObject, new: &DynamicObject) -> Result<(), String> {
    let old: DemoApp = old.to_typed().map_err(|e| e.to_string())?;
    let new: DemoApp = new.to_typed().map_err(|e| e.to_string())?;
    if old.spec.image != new.spec.image {
        return Err("spec.image: image is immutable".into());
    }
    Ok(())
}

#[test]
fn probe() {
    let full = std::env::var_os("PROBE_FULL").is_some();
    let mut scope = default_scope();
    if !full {
        scope.max_deletes = 0;
    }
    for mirror in [true, false] {
        let mut s = spec::<DemoController>("demo");
        if mirror {
            s.kinds = KindRegistry::builtin().with(
                KindInfo::custom_resource(Kind::of::<DemoApp>())
                    .with_validation(old_validate)
                    .with_transition_validation(old_transition),
            );
        }
        let t = std::time::Instant::now();
        let r = esr::verify(s, scope.clone(), &CheckOptions::default());
        for p in &r.results {
            eprintln!(
                "PROBE demo mirror={mirror} {} {} states={} transitions={}",
                p.property, p.verdict, p.states, p.transitions
            );
        }
        eprintln!("PROBE demo mirror={mirror} wall {:?}", t.elapsed());
    }
}
