//! Symbolic requests: what the generator produces. Names come from a small pool so that
//! collisions (AlreadyExists, NotFound, Conflict) are frequent; resourceVersions, uids and
//! generated names are references to values *observed earlier in the sequence*, resolved
//! separately on each side (model tokens vs. real server values).

use crate::kinds::TestKind;
use proptest::prelude::*;
use std::fmt;

/// Which object of a kind a request addresses.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameSel {
    /// A fixed name from the pool `a`, `b`.
    Fixed(u8),
    /// The i-th object created with generateName in this sequence (modulo their number; `a`
    /// when there is none yet).
    Generated(u8),
}

impl fmt::Debug for NameSel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameSel::Fixed(i) => f.write_str(POOL[*i as usize % POOL.len()]),
            NameSel::Generated(i) => write!(f, "generated#{i}"),
        }
    }
}

/// The name pool.
pub const POOL: [&str; 2] = ["a", "b"];
/// The generateName prefix.
pub const GENERATE_PREFIX: &str = "g-";

/// A resourceVersion to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RvSel {
    /// None (an unconditional write).
    Absent,
    /// The last one observed for this object.
    Latest,
    /// The first one observed for this object (stale once it changed; may belong to an
    /// earlier incarnation of the name).
    Oldest,
    /// One never issued.
    Bogus,
}

/// A uid to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UidSel {
    /// None.
    Absent,
    /// The last one observed for this name (maybe of an earlier incarnation).
    Latest,
    /// One never issued.
    Bogus,
}

/// Owner references of the content. The owners are two ConfigMaps (`owner-a`, `owner-b`)
/// created before the sequence and never deleted by it, so the garbage collector never acts
/// during a sequence (it is compared separately, in `tests/gc.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum OwnerSel {
    /// No owner references.
    None,
    /// Controller reference to owner A.
    A,
    /// Controller reference to owner B.
    B,
    /// A non-controller reference to A.
    PlainA,
    /// Controller references to both A and B (invalid).
    Both,
}

/// The content of a written object.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Content {
    /// Body variant (see [`TestKind::body`]).
    pub variant: u8,
    /// Value of label `app` (`x` or `y`), if any.
    pub label: Option<u8>,
    /// Whether it carries [`crate::kinds::FINALIZER`].
    pub finalizer: bool,
    /// Owner references.
    pub owner: OwnerSel,
    /// Status variant sent along (ignored by Update on kinds with a status subresource).
    pub status: u8,
}

impl fmt::Debug for Content {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.variant)?;
        if let Some(l) = self.label {
            write!(f, " app={}", label_value(l))?;
        }
        if self.finalizer {
            f.write_str(" +finalizer")?;
        }
        if self.owner != OwnerSel::None {
            write!(f, " owner={:?}", self.owner)?;
        }
        write!(f, " status=s{}", self.status)
    }
}

/// The label value of label variant `l`.
pub fn label_value(l: u8) -> &'static str {
    if l.is_multiple_of(2) { "x" } else { "y" }
}

/// One generated request.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Op {
    /// Get.
    Get(TestKind, NameSel),
    /// List, optionally with selector `app=<label>`.
    List(TestKind, Option<u8>),
    /// Create by name (`None`: by generateName).
    Create(TestKind, Option<u8>, Content),
    /// Update with the given resourceVersion and uid.
    Update(TestKind, NameSel, Content, RvSel, UidSel),
    /// UpdateStatus with status variant, resourceVersion and uid.
    UpdateStatus(TestKind, NameSel, u8, RvSel, UidSel),
    /// Delete with optional preconditions.
    Delete(TestKind, NameSel, RvSel, UidSel),
    /// GetThenUpdate, requiring ownership by A (`true`) or B.
    GetThenUpdate(TestKind, NameSel, Content, bool),
    /// GetThenUpdateStatus.
    GetThenUpdateStatus(TestKind, NameSel, u8, bool),
    /// GetThenDelete.
    GetThenDelete(TestKind, NameSel, bool),
}

fn owner_name(a: bool) -> &'static str {
    if a { "A" } else { "B" }
}

impl fmt::Debug for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Get(k, n) => write!(f, "Get {k} {n:?}"),
            Op::List(k, l) => match l {
                Some(l) => write!(f, "List {k} app={}", label_value(*l)),
                None => write!(f, "List {k}"),
            },
            Op::Create(k, n, c) => match n {
                Some(n) => write!(f, "Create {k} {:?} [{c:?}]", NameSel::Fixed(*n)),
                None => write!(f, "Create {k} generateName={GENERATE_PREFIX} [{c:?}]"),
            },
            Op::Update(k, n, c, rv, uid) => {
                write!(f, "Update {k} {n:?} [{c:?}] rv={rv:?} uid={uid:?}")
            }
            Op::UpdateStatus(k, n, s, rv, uid) => {
                write!(
                    f,
                    "UpdateStatus {k} {n:?} status=s{s} rv={rv:?} uid={uid:?}"
                )
            }
            Op::Delete(k, n, rv, uid) => write!(f, "Delete {k} {n:?} pre(rv={rv:?} uid={uid:?})"),
            Op::GetThenUpdate(k, n, c, o) => {
                write!(
                    f,
                    "GetThenUpdate {k} {n:?} [{c:?}] owner={}",
                    owner_name(*o)
                )
            }
            Op::GetThenUpdateStatus(k, n, s, o) => write!(
                f,
                "GetThenUpdateStatus {k} {n:?} status=s{s} owner={}",
                owner_name(*o)
            ),
            Op::GetThenDelete(k, n, o) => {
                write!(f, "GetThenDelete {k} {n:?} owner={}", owner_name(*o))
            }
        }
    }
}

impl Op {
    /// The kind addressed.
    pub fn kind(&self) -> TestKind {
        match self {
            Op::Get(k, ..)
            | Op::List(k, ..)
            | Op::Create(k, ..)
            | Op::Update(k, ..)
            | Op::UpdateStatus(k, ..)
            | Op::Delete(k, ..)
            | Op::GetThenUpdate(k, ..)
            | Op::GetThenUpdateStatus(k, ..)
            | Op::GetThenDelete(k, ..) => *k,
        }
    }
}

/// A generated test case: the kinds it uses and its requests.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Sequence {
    /// The requests, in order.
    pub ops: Vec<Op>,
}

impl fmt::Debug for Sequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Sequence of {} requests:", self.ops.len())?;
        for (i, op) in self.ops.iter().enumerate() {
            writeln!(f, "  {i:>2}. {op:?}")?;
        }
        Ok(())
    }
}

fn name_sel() -> impl Strategy<Value = NameSel> {
    prop_oneof![
        4 => (0u8..2).prop_map(NameSel::Fixed),
        1 => (0u8..3).prop_map(NameSel::Generated),
    ]
}

fn rv_sel() -> impl Strategy<Value = RvSel> {
    prop_oneof![
        2 => Just(RvSel::Absent),
        5 => Just(RvSel::Latest),
        2 => Just(RvSel::Oldest),
        1 => Just(RvSel::Bogus),
    ]
}

fn uid_sel() -> impl Strategy<Value = UidSel> {
    prop_oneof![
        6 => Just(UidSel::Absent),
        3 => Just(UidSel::Latest),
        1 => Just(UidSel::Bogus),
    ]
}

fn owner_sel() -> impl Strategy<Value = OwnerSel> {
    prop_oneof![
        3 => Just(OwnerSel::None),
        4 => Just(OwnerSel::A),
        2 => Just(OwnerSel::B),
        1 => Just(OwnerSel::PlainA),
        1 => Just(OwnerSel::Both),
    ]
}

fn content() -> impl Strategy<Value = Content> {
    (
        0u8..4,
        proptest::option::of(0u8..2),
        proptest::bool::weighted(0.3),
        owner_sel(),
        0u8..3,
    )
        .prop_map(|(variant, label, finalizer, owner, status)| Content {
            variant,
            label,
            finalizer,
            owner,
            status,
        })
}

/// The content of a main-resource write (Update, GetThenUpdate) of kind `k`: [`content`],
/// except that a `Widget` never carries its ill-typed status variant (`s2`), whose only effect
/// is on managedFields, which the model does not keep (FIDELITY.md, K2; pinned by
/// `tests/status_in_main_writes.rs`).
fn main_write_content(k: TestKind) -> impl Strategy<Value = Content> {
    content().prop_map(move |mut c| {
        if !k.status_is_well_typed(c.status) {
            c.status = 0;
        }
        c
    })
}

fn op(kinds: Vec<TestKind>) -> impl Strategy<Value = Op> {
    proptest::sample::select(kinds).prop_flat_map(|k| {
        prop_oneof![
            2 => name_sel().prop_map(move |n| Op::Get(k, n)),
            1 => proptest::option::of(0u8..2).prop_map(move |l| Op::List(k, l)),
            4 => (proptest::option::weighted(0.8, 0u8..2), content())
                .prop_map(move |(n, c)| Op::Create(k, n, c)),
            5 => (name_sel(), main_write_content(k), rv_sel(), uid_sel())
                .prop_map(move |(n, c, rv, uid)| Op::Update(k, n, c, rv, uid)),
            2 => (name_sel(), 0u8..3, rv_sel(), uid_sel())
                .prop_map(move |(n, s, rv, uid)| Op::UpdateStatus(k, n, s, rv, uid)),
            3 => (name_sel(), rv_sel(), uid_sel())
                .prop_map(move |(n, rv, uid)| Op::Delete(k, n, rv, uid)),
            2 => (name_sel(), main_write_content(k), proptest::bool::weighted(0.7))
                .prop_map(move |(n, c, o)| Op::GetThenUpdate(k, n, c, o)),
            1 => (name_sel(), 0u8..3, proptest::bool::weighted(0.7))
                .prop_map(move |(n, s, o)| Op::GetThenUpdateStatus(k, n, s, o)),
            1 => (name_sel(), proptest::bool::weighted(0.7))
                .prop_map(move |(n, o)| Op::GetThenDelete(k, n, o)),
        ]
    })
}

/// Sequences of `len` requests over one or two kinds.
pub fn sequence(len: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Sequence> {
    proptest::sample::subsequence(TestKind::ALL.to_vec(), 1..=2).prop_flat_map(move |kinds| {
        proptest::collection::vec(op(kinds), len.clone()).prop_map(|ops| Sequence { ops })
    })
}
