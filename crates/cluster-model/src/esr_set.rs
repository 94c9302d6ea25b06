//! The ESR harness of a controller set ([`crate::model::set`]): several controllers, each with
//! its own custom resource kind, checked together in one cluster model by [`verify_set`].
//!
//! Properties, each with its own verdict (reported like [`crate::esr::verify`]'s, through the
//! same [`crate::esr::check_and_report`]):
//!
//! * `esr:<cr name>` for every custom resource of the scope: `[] desired ~> [] matches` with
//!   the predicate of the member that reconciles it;
//! * `no_foreign_writes:<controller>`: the member writes only its own custom resource (its
//!   status) and objects that custom resource controls
//!   ([`crate::model::set_invariants::foreign_write_by`]);
//! * `no_shared_writes`: no object is written by two members
//!   ([`crate::model::set_invariants::shared_write_in`]);
//! * `declared_reads:<controller>`: the member reads only the kinds it declares
//!   ([`MemberSpec::reads`]) and its own custom resources;
//! * the built-in `object_bound`, and the set's own invariants.
//!
//! Not available for sets (yet): `no_lost_updates` (read tracking) and step invariants.

use crate::api::Etcd;
use crate::esr::{
    ASSUMPTIONS, CheckOptions, Checked, CoverageProbe, DOOMED_STALE, OBJECT_BOUND, REDUCTIONS,
    Report, check_and_report,
};
use crate::external::ExternalModel;
use crate::kinds::KindRegistry;
use crate::model::Pending;
use crate::model::memo::{memo_matches, typed};
use crate::model::set::ControllerSet;
use crate::model::set_invariants::{foreign_write_by, shared_write_in, undeclared_read_by};
use crate::model::set_machine::{SetMachine, SetStateOf};
use crate::model::{Msg, State};
use crate::render::{TraceCtx, render_any_trace};
use crate::scope::Scope;
use anvil_checker::{Counterexample, Property};
use anvil_objects::{DynamicObject, Kind, ObjectRef};
use anvil_reconciler::{CustomResource, Response};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// A member's desired-state predicate on its stored custom resource (decoded by the member),
/// the API server's objects and the external system's state.
pub type MemberMatches<XS> = Arc<dyn Fn(&DynamicObject, &Etcd, &XS) -> bool + Send + Sync>;

/// A [`MemberMatches`] from a typed predicate that reads only the API server's objects; a
/// custom resource that does not decode as `CR` does not match.
pub fn member_matches<CR, XS>(
    f: impl Fn(&CR, &Etcd) -> bool + Send + Sync + 'static,
) -> MemberMatches<XS>
where
    CR: CustomResource,
{
    Arc::new(move |o, etcd, _| typed::<CR>(o).is_some_and(|cr| f(&cr, etcd)))
}

/// A safety invariant over the states of a set.
pub type SetInvariant<S, X> = Arc<dyn Fn(&SetStateOf<S, X>) -> bool + Send + Sync>;

/// What the harness needs to know about one member.
pub struct MemberSpec<XS> {
    /// The controller's name (in property names).
    pub name: String,
    /// Its desired-state predicate.
    pub matches: MemberMatches<XS>,
    /// The kinds it may read besides its own custom resource kind.
    pub reads: Vec<Kind>,
}

/// What the harness needs to know about a controller set.
pub struct SetSpec<S: ControllerSet, X: ExternalModel> {
    /// Name shown in reports.
    pub name: String,
    /// Kinds the API server knows, including every member's custom resource kind.
    pub kinds: KindRegistry,
    /// The external system.
    pub external: X,
    /// One entry per member, in member order.
    pub members: Vec<MemberSpec<X::State>>,
    /// Extra safety invariants (name, predicate).
    pub invariants: Vec<(String, SetInvariant<S, X>)>,
}

/// Name of the no-shared-writes invariant.
pub const NO_SHARED_WRITES: &str = "no_shared_writes";

/// The modelling assumptions of a set run (the single-controller ones, adapted).
pub fn set_assumptions(reductions: bool) -> Vec<String> {
    let mut a: Vec<String> = ASSUMPTIONS
        .iter()
        .map(|a| {
            if a.starts_with("one controller process") {
                "one process per controller of the set (at most one reconcile per CR at a time; each controller crashes on its own); several replicas are not modelled".to_string()
            } else {
                a.to_string()
            }
        })
        .collect();
    a.push("the controllers of a set share the fault switches and bounds of the scope".into());
    if reductions {
        a.push(REDUCTIONS.to_string());
        a.push(DOOMED_STALE.to_string());
    }
    a
}

impl<S, X> TraceCtx<S::Local, S::Q, S::P, X::State> for SetMachine<S, X>
where
    S: ControllerSet,
    X: ExternalModel<Request = S::Q, Response = S::P>,
{
    fn cr_live(&self, s: &SetStateOf<S, X>) -> bool {
        s.etcd
            .objects
            .get(&self.slots()[0].key)
            .is_some_and(|o| o.metadata().deletion_timestamp.is_none())
    }
    fn handle_msg(&self, s: &mut SetStateOf<S, X>, m: &Msg<S::Q>) -> Response<S::P> {
        self.handle(s, m)
    }
    fn slot_key(&self, c: usize) -> ObjectRef {
        self.slots()[c].key.clone()
    }
    fn slot_spec(&self, c: usize, i: usize) -> Value {
        self.slots()[c].specs[i].clone()
    }
    fn ending(&self, k: &ObjectRef, prev: &SetStateOf<S, X>) -> Option<String> {
        let member = self.member_of(&k.kind)?;
        let (cr, local, resp) = match prev.ongoing.get(k) {
            Some(o) => (
                o.cr.clone(),
                o.local.clone(),
                match &o.pending {
                    Pending::Ready(r) => Some(r.clone()),
                    _ => None,
                },
            ),
            None => (prev.etcd.objects.get(k)?.clone(), S::init(member), None),
        };
        if S::done(&local) || S::error(&local) {
            return Some(" -> the reconcile ends (its state was already done/error)".into());
        }
        let (t, _) = S::core(member, &cr, resp, local)?;
        Some(if S::done(&t) {
            " -> reconcile done".to_string()
        } else if S::error(&t) {
            format!(" -> reconcile error ({t:?})")
        } else {
            String::new()
        })
    }
}

/// Checks that every spec of every custom resource is accepted by the CRD's rules and by its
/// member's `validate`.
fn check_set_scope<S, X>(m: &SetMachine<S, X>) -> Result<(), String>
where
    S: ControllerSet,
    X: ExternalModel<Request = S::Q, Response = S::P>,
{
    crate::model::initial_etcd(&m.kinds, &m.scope)?;
    for (c, sl) in m.slots().iter().enumerate() {
        for (i, spec) in sl.specs.iter().enumerate() {
            let obj = m.cr_object_at(c, spec);
            let mut etcd = Etcd::new();
            let stored = etcd.create(&m.kinds, &obj).map_err(|e| {
                format!(
                    "scope spec #{i} {spec} of {} is rejected by the CRD's rules: {e}",
                    sl.key
                )
            })?;
            match S::validate(sl.member, &stored) {
                None => {
                    return Err(format!(
                        "scope spec #{i} {spec} of {} does not decode as the controller's custom resource",
                        sl.key
                    ));
                }
                Some(false) => {
                    return Err(format!(
                        "scope spec #{i} {spec} of {} is rejected by the reconciler's validate",
                        sl.key
                    ));
                }
                Some(true) => {}
            }
        }
    }
    Ok(())
}

fn live<'a, T, Q, P, XS>(s: &'a State<T, Q, P, XS>, k: &ObjectRef) -> Option<&'a DynamicObject> {
    s.etcd
        .objects
        .get(k)
        .filter(|o| o.metadata().deletion_timestamp.is_none())
}

/// Builds the set's machine and checks the ESR of every custom resource, the non-interference
/// invariants and the built-in ones within `scope` (member 0's custom resources and specs in
/// the scope's main fields, the others' in [`Scope::others`]). A scope that does not fit the
/// set, or that a CRD or `validate` rejects, gives a report with `config_error` set and no
/// results.
pub fn verify_set<S, X>(spec: SetSpec<S, X>, scope: Scope, opts: &CheckOptions) -> Report
where
    S: ControllerSet,
    X: ExternalModel<Request = S::Q, Response = S::P> + Clone,
{
    let reduce = !opts.no_reductions;
    let assumptions = set_assumptions(reduce);
    let config_error = |e: String| Report {
        controller: spec.name.clone(),
        scope: scope.clone(),
        assumptions: assumptions.clone(),
        config_error: Some(e),
        coverage: None,
        fingerprint_collision_bound: 0.0,
        results: Vec::new(),
    };
    if spec.members.len() != S::members() {
        return config_error(format!(
            "the set has {} members but its spec describes {}",
            S::members(),
            spec.members.len()
        ));
    }
    let machine = || {
        SetMachine::<S, X>::new(spec.kinds.clone(), scope.clone(), spec.external.clone())
            .map(|m| m.with_reductions(reduce))
    };
    let m = match machine() {
        Ok(m) => m,
        Err(e) => return config_error(e),
    };
    if let Err(e) = check_set_scope(&m) {
        return config_error(e);
    }
    let report = verify_set_on(&m, &spec, &scope, opts, assumptions);
    if !m.create_pruning().must_repeat() {
        return report;
    }
    // (the same message as the single-controller harness, `crate::esr::verify`)
    let first = report.results.first().map_or(0, |r| r.states);
    let Ok(m) = machine().map(|m| m.with_create_pruning(false)) else {
        return report;
    };
    let mut report = verify_set_on(&m, &spec, &scope, opts, set_assumptions(reduce));
    report
        .assumptions
        .push(crate::esr::repeated_without_create_pruning(first));
    report
}

fn verify_set_on<S, X>(
    m: &SetMachine<S, X>,
    spec: &SetSpec<S, X>,
    scope: &Scope,
    opts: &CheckOptions,
    assumptions: Vec<String>,
) -> Report
where
    S: ControllerSet,
    X: ExternalModel<Request = S::Q, Response = S::P> + Clone,
{
    let slots = m.slots().to_vec();
    let kinds = m.cr_kinds().to_vec();
    let mut props: Vec<Property<SetMachine<S, X>>> = Vec::new();
    let esr_name = |k: &ObjectRef| format!("esr:{}", k.name);
    for sl in &slots {
        let key = sl.key.clone();
        let k1 = key.clone();
        let matches = spec.members[sl.member].matches.clone();
        let tag = std::any::TypeId::of::<(S, X)>();
        props.push(Property::stable_leads_to_always(
            esr_name(&key),
            move |s: &SetStateOf<S, X>| live(s, &k1).is_some(),
            move |s: &SetStateOf<S, X>| {
                let Some(o) = s.etcd.objects.get(&key) else {
                    return false;
                };
                memo_matches(
                    tag,
                    Arc::as_ptr(&matches) as *const () as usize,
                    o,
                    &s.etcd,
                    &s.external,
                    || matches(o, &s.etcd, &s.external),
                )
            },
        ));
    }
    {
        let m_kinds = kinds.clone();
        let bound = scope.max_objects_per_kind;
        props.push(Property::always(
            OBJECT_BOUND,
            move |s: &SetStateOf<S, X>| {
                let mut counts = std::collections::BTreeMap::<&Kind, usize>::new();
                for k in s.etcd.objects.keys() {
                    if !m_kinds.contains(&k.kind) {
                        *counts.entry(&k.kind).or_default() += 1;
                    }
                }
                counts.values().all(|n| *n <= bound)
            },
        ));
    }
    for (i, member) in spec.members.iter().enumerate() {
        let (kind, all) = (kinds[i].clone(), kinds.clone());
        props.push(Property::always(
            format!("no_foreign_writes:{}", member.name),
            move |s: &SetStateOf<S, X>| !foreign_write_by(&kind, &all, s),
        ));
    }
    {
        let (all, registry) = (kinds.clone(), m.kinds.clone());
        props.push(Property::always(
            NO_SHARED_WRITES,
            move |s: &SetStateOf<S, X>| !shared_write_in(&registry, &all, s),
        ));
    }
    for (i, member) in spec.members.iter().enumerate() {
        let (kind, reads) = (kinds[i].clone(), member.reads.clone());
        props.push(Property::always(
            format!("declared_reads:{}", member.name),
            move |s: &SetStateOf<S, X>| !undeclared_read_by(&kind, &reads, s),
        ));
    }
    for (name, inv) in &spec.invariants {
        let inv = inv.clone();
        props.push(Property::always(
            name.clone(),
            move |s: &SetStateOf<S, X>| inv(s),
        ));
    }
    // coverage: one cell per custom resource and spec
    let mut cells = Vec::new();
    let mut first_cell = Vec::new();
    for sl in &slots {
        first_cell.push(cells.len());
        cells.extend(
            sl.specs
                .iter()
                .map(|s| (sl.key.name.to_string(), s.clone())),
        );
    }
    let probe = Arc::new(CoverageProbe::new(cells.len()));
    let coverage = {
        let (probe, slots) = (probe.clone(), slots.clone());
        let matchers: Vec<MemberMatches<X::State>> =
            spec.members.iter().map(|m| m.matches.clone()).collect();
        Property::always("(coverage)", move |s: &SetStateOf<S, X>| {
            for (c, sl) in slots.iter().enumerate() {
                let (Some(o), Some(env)) = (live(s, &sl.key), s.env.crs.get(c)) else {
                    continue;
                };
                let i = first_cell[c] + env.spec;
                probe.premise[i].store(true, Ordering::Relaxed);
                if !probe.matched[i].load(Ordering::Relaxed)
                    && matchers[sl.member](o, &s.etcd, &s.external)
                {
                    probe.matched[i].store(true, Ordering::Relaxed);
                }
            }
            true
        })
    };
    let esr_crs = slots
        .iter()
        .map(|sl| (esr_name(&sl.key), sl.key.name.to_string()))
        .collect();
    let render = |cx: &Counterexample<SetMachine<S, X>>, cr: Option<&str>| {
        let key = cr.and_then(|n| slots.iter().find(|sl| sl.key.name == n));
        let pred = |s: &SetStateOf<S, X>| {
            let chosen: Vec<&crate::model::set_machine::Slot> = match key {
                Some(sl) => vec![sl],
                None => slots.iter().collect(),
            };
            let crs: Vec<_> = chosen
                .iter()
                .filter_map(|sl| s.etcd.objects.get(&sl.key).map(|o| (sl.member, o)))
                .collect();
            !crs.is_empty()
                && crs
                    .iter()
                    .all(|(mb, o)| spec.members[*mb].matches.as_ref()(o, &s.etcd, &s.external))
        };
        render_any_trace(m, m, cx, Some(&pred))
    };
    check_and_report(
        m,
        Checked {
            controller: spec.name.clone(),
            scope: scope.clone(),
            assumptions,
            props,
            coverage,
            probe,
            cells,
            esr_crs,
            render: &render,
        },
        opts,
    )
}
