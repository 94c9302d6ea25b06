//! Fixed sequences (not generated): main-resource writes (Update, GetThenUpdate) that carry a
//! `status` on kinds with a status subresource. The server discards that status, but what it
//! does with the rest of the write (and with the object's resourceVersion) must agree with the
//! model for every pair of status variants: the one the object was created with and the one
//! the write carries. The property-based test in `differential.rs` once found a disagreement
//! here only by chance; this file checks every pair every time.
//!
//! The one pair that disagrees is pinned as what it is, FIDELITY.md's K2: a `Widget` write
//! carrying a status of the wrong types (which the generator therefore never sends in a
//! main-resource write) makes the real server drop the object's managedFields, bumping its
//! resourceVersion, where the model's write is a no-op.

use anvil_fidelity::Harness;
use anvil_fidelity::kinds::TestKind;
use anvil_fidelity::ops::{Content, NameSel, Op, OwnerSel, RvSel, Sequence, UidSel};

fn content(status: u8) -> Content {
    Content {
        variant: 0,
        label: None,
        finalizer: false,
        owner: OwnerSel::A,
        status,
    }
}

/// Create with status `created`, write with `sent`, read, write `created` again, read.
fn sequence(
    kind: TestKind,
    created: u8,
    sent: u8,
    write: &impl Fn(TestKind, Content) -> Op,
) -> Sequence {
    Sequence {
        ops: vec![
            Op::Create(kind, Some(0), content(created)),
            write(kind, content(sent)),
            Op::Get(kind, NameSel::Fixed(0)),
            write(kind, content(created)),
            Op::Get(kind, NameSel::Fixed(0)),
        ],
    }
}

fn check_all(write: impl Fn(TestKind, Content) -> Op) {
    let h = Harness::get();
    let mut failures = Vec::new();
    let mut checked = 0;
    for kind in [TestKind::Widget, TestKind::Service, TestKind::StatefulSet] {
        let well_typed: Vec<u8> = (0..3).filter(|&s| kind.status_is_well_typed(s)).collect();
        for &created in &well_typed {
            for &sent in &well_typed {
                checked += 1;
                if let Err(e) = h.run_sequence(&sequence(kind, created, sent, &write)) {
                    failures.push(format!("{kind} created s{created}, sent s{sent}:\n{e}"));
                }
            }
        }
    }
    assert_eq!(checked, 4 + 9 + 9);
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn get_then_update_carrying_a_status_agrees_for_every_pair_of_status_variants() {
    check_all(|kind, c| Op::GetThenUpdate(kind, NameSel::Fixed(0), c, true));
}

#[test]
fn update_carrying_a_status_agrees_for_every_pair_of_status_variants() {
    check_all(|kind, c| Op::Update(kind, NameSel::Fixed(0), c, RvSel::Latest, UidSel::Absent));
}

/// FIDELITY.md K2, pinned: if the real server ever stops bumping the resourceVersion here (or
/// the model starts), this fails and K2 can go.
#[test]
fn an_ill_typed_status_in_a_main_write_is_the_known_difference_k2() {
    let h = Harness::get();
    assert!(!TestKind::Widget.status_is_well_typed(2));
    for created in [0, 1] {
        let e = h
            .run_sequence(&sequence(TestKind::Widget, created, 2, &|kind, c| {
                Op::Update(kind, NameSel::Fixed(0), c, RvSel::Latest, UidSel::Absent)
            }))
            .expect_err("K2: the real server bumps the resourceVersion, the model does not");
        assert!(
            e.contains("differ at  1. Update Widget") && e.contains("resourceVersion: model"),
            "not the K2 difference:\n{e}"
        );
    }
    // Created with the ill-typed status, the object never had managedFields: no difference.
    h.run_sequence(&sequence(TestKind::Widget, 2, 2, &|kind, c| {
        Op::Update(kind, NameSel::Fixed(0), c, RvSel::Latest, UidSel::Absent)
    }))
    .expect("no managedFields to drop");
}
