//! Running one symbolic sequence on both sides and comparing step by step.

use crate::compare::{Exception, Pairing, compare_objects, known_exception};
use crate::kinds::{FINALIZER, TestKind, object, registry};
use crate::ops::{
    Content, GENERATE_PREFIX, NameSel, Op, OwnerSel, POOL, RvSel, Sequence, UidSel, label_value,
};
use anvil_cluster_model::tokens::{MAX_TOKEN, Space, token};
use anvil_cluster_model::{Etcd, KindRegistry};
use anvil_objects::{DynamicObject, ObjectRef, Owner};
use anvil_reconciler::{KubeRequest, KubeResponse, Preconditions};
use kube::Client;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::{Duration, Instant};

/// Names of the two owner ConfigMaps created before every sequence.
pub const OWNERS: [&str; 2] = ["owner-a", "owner-b"];

/// Objects the real control plane creates by itself in every namespace, which the model does
/// not (FIDELITY.md, "System objects").
pub fn is_system_object(kind: TestKind, name: &str) -> bool {
    kind == TestKind::ConfigMap && name == "kube-root-ca.crt"
}

/// What one side (model or real) has observed: per object name, the resourceVersions seen
/// (in order) and the last uid; the generated names; the owners' identities.
#[derive(Default)]
struct Memory {
    rvs: BTreeMap<(TestKind, String), Vec<String>>,
    uids: BTreeMap<(TestKind, String), String>,
    generated: BTreeMap<TestKind, Vec<String>>,
    generated_uids: BTreeSet<String>,
    /// Positions in `generated` whose model name was reused by a later generated object
    /// (computed on the model side, shared with the real side).
    superseded: BTreeSet<(TestKind, usize)>,
    owners: Vec<Owner>,
    bogus_rv: String,
    bogus_uid: String,
}

impl Memory {
    fn observe(&mut self, kind: TestKind, o: &DynamicObject) {
        let key = (kind, o.name().to_string());
        if let Some(rv) = o.resource_version() {
            let h = self.rvs.entry(key.clone()).or_default();
            if h.last().map(String::as_str) != Some(rv) {
                h.push(rv.to_string());
            }
        }
        if let Some(uid) = o.uid() {
            self.uids.insert(key, uid.to_string());
        }
        if o.metadata().generate_name.is_some() {
            let uid = o.uid().unwrap_or_default().to_string();
            let g = self.generated.entry(kind).or_default();
            if !self.generated_uids.contains(&uid) {
                self.generated_uids.insert(uid);
                g.push(o.name().to_string());
            }
        }
    }

    fn name(&self, kind: TestKind, n: NameSel) -> String {
        match n {
            NameSel::Fixed(i) => POOL[i as usize % POOL.len()].to_string(),
            NameSel::Generated(i) => {
                // Only the latest incarnation of a model name: the model reuses the smallest
                // free generated name, so an earlier object of that name has no model
                // counterpart (FIDELITY.md, "Generated names").
                let live: Vec<&String> = match self.generated.get(&kind) {
                    Some(g) => g
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| !self.superseded.contains(&(kind, *j)))
                        .map(|(_, n)| n)
                        .collect(),
                    None => Vec::new(),
                };
                match live.len() {
                    0 => POOL[0].to_string(),
                    n => live[i as usize % n].clone(),
                }
            }
        }
    }

    fn rv(&self, kind: TestKind, name: &str, sel: RvSel) -> Option<String> {
        let h = self.rvs.get(&(kind, name.to_string()));
        match sel {
            RvSel::Absent => None,
            RvSel::Latest => h.and_then(|h| h.last().cloned()),
            RvSel::Oldest => h.and_then(|h| h.first().cloned()),
            RvSel::Bogus => Some(self.bogus_rv.clone()),
        }
    }

    fn uid(&self, kind: TestKind, name: &str, sel: UidSel) -> Option<String> {
        match sel {
            UidSel::Absent => None,
            UidSel::Latest => self.uids.get(&(kind, name.to_string())).cloned(),
            UidSel::Bogus => Some(self.bogus_uid.clone()),
        }
    }

    fn owner_refs(&self, sel: OwnerSel) -> Option<Value> {
        let r = |o: &Owner, controller: bool| {
            let mut v =
                json!({"apiVersion": o.api_version, "kind": o.kind, "name": o.name, "uid": o.uid});
            if controller {
                v["controller"] = json!(true);
                v["blockOwnerDeletion"] = json!(true);
            }
            v
        };
        match sel {
            OwnerSel::None => None,
            OwnerSel::A => Some(json!([r(&self.owners[0], true)])),
            OwnerSel::B => Some(json!([r(&self.owners[1], true)])),
            OwnerSel::PlainA => Some(json!([r(&self.owners[0], false)])),
            OwnerSel::Both => Some(json!([r(&self.owners[0], true), r(&self.owners[1], true)])),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn build(
        &self,
        kind: TestKind,
        ns: &str,
        name: Option<&str>,
        c: &Content,
        status: Option<u8>,
        rv: Option<String>,
        uid: Option<String>,
    ) -> DynamicObject {
        let mut meta = Map::new();
        match name {
            Some(n) => meta.insert("name".into(), n.into()),
            None => meta.insert("generateName".into(), GENERATE_PREFIX.into()),
        };
        if let Some(l) = c.label {
            meta.insert("labels".into(), json!({"app": label_value(l)}));
        }
        if c.finalizer {
            meta.insert("finalizers".into(), json!([FINALIZER]));
        }
        if let Some(refs) = self.owner_refs(c.owner) {
            meta.insert("ownerReferences".into(), refs);
        }
        if let Some(rv) = rv {
            meta.insert("resourceVersion".into(), rv.into());
        }
        if let Some(uid) = uid {
            meta.insert("uid".into(), uid.into());
        }
        let mut body = kind.body(c.variant);
        if let Some(st) = kind.status(status.unwrap_or(c.status)) {
            body.push(("status", st));
        }
        object(&kind.kind(), ns, meta, body)
    }

    /// The concrete request of `op` on this side.
    fn request(&self, op: &Op, ns: &str) -> KubeRequest {
        let key = |k: TestKind, n: &str| ObjectRef::new(k.kind(), ns, n);
        let plain = Content {
            variant: 0,
            label: None,
            finalizer: false,
            owner: OwnerSel::None,
            status: 0,
        };
        match *op {
            Op::Get(k, n) => KubeRequest::Get(key(k, &self.name(k, n))),
            Op::List(k, l) => KubeRequest::List {
                kind: k.kind(),
                namespace: ns.to_string(),
                label_selector: l
                    .map(|l| [("app".to_string(), label_value(l).to_string())].into())
                    .unwrap_or_default(),
            },
            Op::Create(k, n, c) => {
                let name = n.map(|i| POOL[i as usize % POOL.len()]);
                KubeRequest::Create(self.build(k, ns, name, &c, None, None, None))
            }
            Op::Update(k, n, c, rv, uid) => {
                let name = self.name(k, n);
                let rv = self.rv(k, &name, rv);
                let uid = self.uid(k, &name, uid);
                KubeRequest::Update(self.build(k, ns, Some(&name), &c, None, rv, uid))
            }
            Op::UpdateStatus(k, n, s, rv, uid) => {
                let name = self.name(k, n);
                let rv = self.rv(k, &name, rv);
                let uid = self.uid(k, &name, uid);
                KubeRequest::UpdateStatus(self.build(k, ns, Some(&name), &plain, Some(s), rv, uid))
            }
            Op::Delete(k, n, rv, uid) => {
                let name = self.name(k, n);
                let rv = self.rv(k, &name, rv);
                let uid = self.uid(k, &name, uid);
                KubeRequest::Delete {
                    key: key(k, &name),
                    preconditions: (rv.is_some() || uid.is_some()).then_some(Preconditions {
                        uid,
                        resource_version: rv,
                    }),
                }
            }
            Op::GetThenUpdate(k, n, c, a) => {
                let name = self.name(k, n);
                KubeRequest::GetThenUpdate {
                    obj: self.build(k, ns, Some(&name), &c, None, None, None),
                    owner: self.owners[usize::from(!a)].clone(),
                }
            }
            Op::GetThenUpdateStatus(k, n, s, a) => {
                let name = self.name(k, n);
                KubeRequest::GetThenUpdateStatus {
                    obj: self.build(k, ns, Some(&name), &plain, Some(s), None, None),
                    owner: self.owners[usize::from(!a)].clone(),
                }
            }
            Op::GetThenDelete(k, n, a) => KubeRequest::GetThenDelete {
                key: key(k, &self.name(k, n)),
                owner: self.owners[usize::from(!a)].clone(),
            },
        }
    }
}

/// Statistics of one or more runs.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Sequences run.
    pub sequences: usize,
    /// Requests compared.
    pub requests: usize,
    /// Requests that failed (on both sides, with the same reason), by reason.
    pub errors: BTreeMap<String, usize>,
    /// Requests that succeeded, by verb.
    pub successes: BTreeMap<String, usize>,
    /// StatefulSet controller writes replayed on the model.
    pub builtin_writes: usize,
    /// How often each known difference (FIDELITY.md) was accepted.
    pub known: BTreeMap<&'static str, usize>,
}

impl Stats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        self.sequences += other.sequences;
        self.requests += other.requests;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.successes {
            *self.successes.entry(k.clone()).or_default() += v;
        }
        self.builtin_writes += other.builtin_writes;
        for (k, v) in &other.known {
            *self.known.entry(k).or_default() += v;
        }
    }
}

fn short(resp: &KubeResponse) -> String {
    match resp.error() {
        Some(e) => format!("Err({:?})", e.reason),
        None => match resp {
            KubeResponse::List(Ok(items)) => format!(
                "Ok([{}])",
                items
                    .iter()
                    .map(|o| o.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            other => match other.object() {
                Some(o) => format!(
                    "Ok({} rv={})",
                    o.name(),
                    o.resource_version().unwrap_or("-")
                ),
                None => "Ok".to_string(),
            },
        },
    }
}

/// One sequence on both sides.
pub struct Run<'a> {
    client: &'a Client,
    ns: String,
    kinds: KindRegistry,
    etcd: Etcd,
    model: Memory,
    real: Memory,
    pairing: Pairing,
    trace: String,
    /// Statistics.
    pub stats: Stats,
}

impl<'a> Run<'a> {
    /// A run in the (fresh) namespace `ns`.
    pub fn new(client: &'a Client, ns: String) -> Self {
        Run {
            client,
            ns,
            kinds: registry(),
            etcd: Etcd::new(),
            model: Memory {
                bogus_rv: token(Space::Rv, MAX_TOKEN - 1),
                bogus_uid: token(Space::Uid, MAX_TOKEN - 1),
                ..Memory::default()
            },
            real: Memory {
                bogus_rv: "1".into(),
                bogus_uid: "00000000-0000-4000-8000-000000000000".into(),
                ..Memory::default()
            },
            pairing: Pairing::default(),
            trace: String::new(),
            stats: Stats::default(),
        }
    }

    fn fail(&self, step: &str, what: String) -> String {
        format!(
            "model and real API server differ at {step} (namespace {}):\n  {what}\n\ntrace \
             (model answer | real answer):\n{}",
            self.ns, self.trace
        )
    }

    /// Runs both sides' requests and compares the answers; records observations.
    async fn step(
        &mut self,
        label: &str,
        kind: TestKind,
        mreq: KubeRequest,
        rreq: KubeRequest,
    ) -> Result<bool, String> {
        let snapshot = self.etcd.clone();
        let mresp = self.etcd.handle(&self.kinds, &mreq);
        let rresp = anvil_shim::execute(self.client, &rreq).await;
        let _ = writeln!(
            self.trace,
            "  {label}\n      -> {} | {}",
            short(&mresp),
            short(&rresp)
        );
        self.stats.requests += 1;
        let mut applied = Vec::new();
        let result = self.compare(kind, &mreq, &mresp, &rresp, &mut applied);
        for a in applied {
            *self.stats.known.entry(a).or_default() += 1;
        }
        if let Err(e) = result {
            let Some((id, exception)) = known_exception(kind, &mreq, &mresp, &rresp) else {
                return Err(self.fail(label, e));
            };
            *self.stats.known.entry(id).or_default() += 1;
            self.etcd = snapshot;
            let Exception::UndoRealCreate(_) = exception else {
                let _ = writeln!(
                    self.trace,
                    "      (known difference {id}: the model's answer kept)"
                );
                return Ok(false);
            };
            // the real side's name (generated names differ between the sides)
            let Some(key) = rreq.key() else {
                return Err(self.fail(label, e));
            };
            let del = KubeRequest::Delete {
                key,
                preconditions: None,
            };
            let d = anvil_shim::execute(self.client, &del).await;
            if let Some(e) = d.error() {
                return Err(self.fail(label, format!("cannot undo the real create: {e}")));
            }
            let _ = writeln!(
                self.trace,
                "      (known difference {id}: deleted on the real side)"
            );
            return Ok(false);
        }
        match mresp.error() {
            Some(e) => {
                *self
                    .stats
                    .errors
                    .entry(format!("{:?}", e.reason))
                    .or_default() += 1
            }
            None => {
                *self
                    .stats
                    .successes
                    .entry(mreq.verb().to_string())
                    .or_default() += 1
            }
        }
        self.observe(kind, &mresp, &rresp);
        Ok(rresp.error().is_none())
    }

    fn observe(&mut self, kind: TestKind, mresp: &KubeResponse, rresp: &KubeResponse) {
        match (mresp, rresp) {
            (KubeResponse::List(Ok(m)), KubeResponse::List(Ok(r))) => {
                m.iter().for_each(|o| self.model.observe(kind, o));
                r.iter().for_each(|o| self.real.observe(kind, o));
            }
            _ => {
                if let Some(o) = mresp.object() {
                    self.model.observe(kind, o);
                }
                if let Some(o) = rresp.object() {
                    self.real.observe(kind, o);
                }
            }
        }
    }

    fn compare(
        &mut self,
        kind: TestKind,
        req: &KubeRequest,
        m: &KubeResponse,
        r: &KubeResponse,
        applied: &mut Vec<&'static str>,
    ) -> Result<(), String> {
        match (m.error(), r.error()) {
            (Some(me), Some(re)) => {
                return if me.reason == re.reason {
                    Ok(())
                } else {
                    Err(format!(
                        "{} failed with different reasons: model {:?} ({}), real {:?} ({})",
                        req.verb(),
                        me.reason,
                        me.message,
                        re.reason,
                        re.message
                    ))
                };
            }
            (Some(me), None) => {
                return Err(format!(
                    "{} failed in the model with {:?} ({}) but succeeded on the real server: {}",
                    req.verb(),
                    me.reason,
                    me.message,
                    short(r)
                ));
            }
            (None, Some(re)) => {
                return Err(format!(
                    "{} succeeded in the model ({}) but failed on the real server with {:?} ({})",
                    req.verb(),
                    short(m),
                    re.reason,
                    re.message
                ));
            }
            (None, None) => {}
        }
        if let (KubeResponse::List(Ok(ms)), KubeResponse::List(Ok(rs))) = (m, r) {
            return self.compare_lists(kind, ms, rs, applied);
        }
        match (m.object(), r.object()) {
            (Some(mo), Some(ro)) => compare_objects(&mut self.pairing, kind, ro, mo, applied),
            (None, None) => Ok(()),
            _ => Err("one side returned an object, the other did not".into()),
        }
    }

    fn compare_lists(
        &mut self,
        kind: TestKind,
        ms: &[DynamicObject],
        rs: &[DynamicObject],
        applied: &mut Vec<&'static str>,
    ) -> Result<(), String> {
        let mut rs: Vec<&DynamicObject> = rs
            .iter()
            .filter(|o| !is_system_object(kind, o.name()))
            .collect();
        // Generated names differ between the sides: order by the model's names.
        rs.sort_by_key(|o| self.pairing.model_name(o.kind(), o.name()));
        let mut ms: Vec<&DynamicObject> = ms.iter().collect();
        ms.sort_by_key(|o| o.name().to_string());
        let names = |v: &[&DynamicObject], p: Option<&Pairing>| {
            v.iter()
                .map(|o| {
                    p.map_or_else(
                        || o.name().to_string(),
                        |p| p.model_name(o.kind(), o.name()),
                    )
                })
                .collect::<Vec<_>>()
        };
        if names(&ms, None) != names(&rs, Some(&self.pairing)) {
            return Err(format!(
                "lists differ: model {:?}, real {:?} (in model names)",
                names(&ms, None),
                names(&rs, Some(&self.pairing))
            ));
        }
        for (m, r) in ms.iter().zip(rs) {
            compare_objects(&mut self.pairing, kind, r, m, applied)?;
        }
        Ok(())
    }

    /// Creates the two owner ConfigMaps on both sides.
    async fn setup(&mut self) -> Result<(), String> {
        for name in OWNERS {
            let o = object(
                &TestKind::ConfigMap.kind(),
                &self.ns,
                [("name".to_string(), Value::from(name))]
                    .into_iter()
                    .collect(),
                vec![],
            );
            let req = KubeRequest::Create(o);
            self.step(
                &format!("setup: Create ConfigMap {name}"),
                TestKind::ConfigMap,
                req.clone(),
                req,
            )
            .await?;
        }
        for (mem, etcd) in [(&mut self.model, true), (&mut self.real, false)] {
            let _ = etcd;
            for name in OWNERS {
                let uid = mem.uids[&(TestKind::ConfigMap, name.to_string())].clone();
                mem.owners.push(Owner {
                    api_version: "v1".into(),
                    kind: "ConfigMap".into(),
                    name: name.into(),
                    uid,
                });
            }
        }
        Ok(())
    }

    /// After a successful write to a StatefulSet, waits until the real StatefulSet controller
    /// has caught up and replays its status write on the model as the built-in actor
    /// (FIDELITY.md, "StatefulSet controller").
    async fn settle_statefulset(&mut self, name: &str, model_name: &str) -> Result<(), String> {
        let key = ObjectRef::new(TestKind::StatefulSet.kind(), &self.ns, name);
        let deadline = Instant::now() + Duration::from_secs(10);
        let real = loop {
            let cur = match anvil_shim::execute(self.client, &KubeRequest::Get(key.clone())).await {
                KubeResponse::Get(Ok(o)) => o,
                _ => return Ok(()),
            };
            let observed = cur
                .status()
                .and_then(|s| s.get("observedGeneration"))
                .and_then(Value::as_i64);
            if observed == cur.metadata().generation {
                tokio::time::sleep(Duration::from_millis(40)).await;
                let again =
                    match anvil_shim::execute(self.client, &KubeRequest::Get(key.clone())).await {
                        KubeResponse::Get(Ok(o)) => o,
                        _ => return Ok(()),
                    };
                if again.resource_version() == cur.resource_version() {
                    break cur;
                }
                continue;
            }
            if Instant::now() > deadline {
                return Err(self.fail(
                    "settling the StatefulSet controller",
                    format!(
                        "{key} never reached observedGeneration == generation: {}",
                        cur.to_json()
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        let mkey = ObjectRef::new(TestKind::StatefulSet.kind(), &self.ns, model_name);
        let Some(model_cur) = self.etcd.objects.get(&mkey).cloned() else {
            return Err(self.fail(
                "settling the StatefulSet controller",
                format!("{mkey} is missing in the model"),
            ));
        };
        if model_cur.status() == real.status() {
            return Ok(());
        }
        let write = model_cur.modify(|p| {
            p.body
                .insert("status".into(), real.status().cloned().unwrap_or(json!({})));
            p.metadata.resource_version = None;
        });
        let mresp = self
            .etcd
            .handle(&self.kinds, &KubeRequest::UpdateStatus(write));
        let _ = writeln!(
            self.trace,
            "  (the StatefulSet controller wrote {name}'s status; replayed on the model)\n      -> {} | Ok({name} rv={})",
            short(&mresp),
            real.resource_version().unwrap_or("-")
        );
        self.stats.builtin_writes += 1;
        let mut applied = Vec::new();
        let r = match mresp.object() {
            Some(m) => compare_objects(
                &mut self.pairing,
                TestKind::StatefulSet,
                &real,
                m,
                &mut applied,
            ),
            None => Err(format!(
                "the replayed status write failed in the model: {mresp:?}"
            )),
        };
        r.map_err(|e| self.fail("replaying the StatefulSet controller's write", e))?;
        if let Some(m) = mresp.object() {
            self.model.observe(TestKind::StatefulSet, m);
        }
        self.real.observe(TestKind::StatefulSet, &real);
        Ok(())
    }

    /// Runs the sequence and compares every answer and the final store contents.
    pub async fn run(&mut self, seq: &Sequence) -> Result<(), String> {
        self.setup().await?;
        for (i, op) in seq.ops.iter().enumerate() {
            let superseded: BTreeSet<(TestKind, usize)> = self
                .model
                .generated
                .iter()
                .flat_map(|(k, g)| {
                    g.iter()
                        .enumerate()
                        .filter(|(j, n)| g[j + 1..].contains(n))
                        .map(|(j, _)| (*k, j))
                })
                .collect();
            self.model.superseded = superseded.clone();
            self.real.superseded = superseded;
            let mreq = self.model.request(op, &self.ns);
            let rreq = self.real.request(op, &self.ns);
            let ok = self
                .step(&format!("{i:>2}. {op:?}"), op.kind(), mreq, rreq.clone())
                .await?;
            if ok
                && op.kind() == TestKind::StatefulSet
                && rreq.is_mutating()
                && let Some(key) = rreq.key()
            {
                // Generated names differ per side.
                let names = match &rreq {
                    KubeRequest::Create(o) if o.name().is_empty() => {
                        let last = |m: &Memory| {
                            m.generated
                                .get(&TestKind::StatefulSet)
                                .and_then(|g| g.last())
                                .cloned()
                        };
                        match (last(&self.real), last(&self.model)) {
                            (Some(r), Some(m)) => (r, m),
                            _ => continue,
                        }
                    }
                    _ => (
                        key.name.to_string(),
                        self.model
                            .request(op, &self.ns)
                            .key()
                            .map(|k| k.name.to_string())
                            .unwrap_or_default(),
                    ),
                };
                self.settle_statefulset(&names.0, &names.1).await?;
            }
        }
        self.compare_stores(seq).await
    }

    /// Compares the contents of both stores for every kind the sequence used (and the
    /// owners' ConfigMaps).
    async fn compare_stores(&mut self, seq: &Sequence) -> Result<(), String> {
        let kinds: BTreeSet<TestKind> = seq
            .ops
            .iter()
            .map(Op::kind)
            .chain([TestKind::ConfigMap])
            .collect();
        for k in kinds {
            let req = KubeRequest::List {
                kind: k.kind(),
                namespace: self.ns.clone(),
                label_selector: BTreeMap::new(),
            };
            let mresp = KubeResponse::List(Ok(self.etcd.list_objs(
                &k.kind(),
                &self.ns,
                &BTreeMap::new(),
            )));
            let rresp = anvil_shim::execute(self.client, &req).await;
            let _ = writeln!(
                self.trace,
                "  final store: {k}\n      -> {} | {}",
                short(&mresp),
                short(&rresp)
            );
            let mut applied = Vec::new();
            self.compare(k, &req, &mresp, &rresp, &mut applied)
                .map_err(|e| self.fail(&format!("the final store contents ({k})"), e))?;
        }
        Ok(())
    }

    /// Removes the finalizers the sequence left on real objects (so the namespace can go
    /// away) and deletes the namespace without waiting.
    pub async fn cleanup(&self) {
        use kube::api::{Api, DeleteParams, Patch, PatchParams};
        for k in TestKind::ALL {
            let api = anvil_shim::dynamic_api(self.client, &k.kind(), &self.ns);
            if let Ok(list) = api.list(&Default::default()).await {
                for o in list.items {
                    if o.metadata
                        .finalizers
                        .as_ref()
                        .is_some_and(|f| !f.is_empty())
                        && let Some(n) = &o.metadata.name
                    {
                        let _ = api
                            .patch(
                                n,
                                &PatchParams::default(),
                                &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                            )
                            .await;
                    }
                }
            }
        }
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        let _ = namespaces.delete(&self.ns, &DeleteParams::default()).await;
    }
}
