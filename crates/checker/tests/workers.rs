//! The worker threads of a search: the same threads expand every level (so what a machine
//! keeps per thread survives from one level to the next), a panic in one of them ends the
//! search with that panic instead of hanging it, and every distinct state is compacted once
//! before it waits in the frontier.

use anvil_checker::*;
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::ThreadId;

/// Levels of up to `width` states (several chunks each) for `depth` levels: state `(d, i)`
/// steps to `(d + 1, (2i + a) % width)` for `a` in {0, 1}. Records which threads computed
/// successors, and panics at state `panic_at` if set.
struct Wide {
    width: u32,
    depth: u32,
    panic_at: Option<(u32, u32)>,
    threads: Mutex<HashSet<ThreadId>>,
    compacted: AtomicU64,
}

impl Wide {
    fn new(panic_at: Option<(u32, u32)>) -> Self {
        Wide {
            width: 3000,
            depth: 16,
            panic_at,
            threads: Mutex::new(HashSet::new()),
            compacted: AtomicU64::new(0),
        }
    }
}

impl Machine for Wide {
    type State = (u32, u32);
    type Action = u32;
    type FairnessKey = u32;

    fn init_states(&self) -> Vec<(u32, u32)> {
        vec![(0, 0)]
    }
    fn actions(&self, _: &(u32, u32), out: &mut Vec<u32>) {
        out.extend([0, 1]);
    }
    fn next_state(&self, &(d, i): &(u32, u32), a: &u32) -> Option<(u32, u32)> {
        self.threads
            .lock()
            .unwrap()
            .insert(std::thread::current().id());
        assert!(
            Some((d, i)) != self.panic_at,
            "the machine fails at {d}/{i}"
        );
        (d < self.depth).then(|| (d + 1, (2 * i + a) % self.width))
    }
    fn fairness(&self, _: &(u32, u32), a: &u32) -> Fairness<u32> {
        Fairness::Weak(*a)
    }
    fn compact(&self, s: (u32, u32)) -> (u32, u32) {
        self.compacted.fetch_add(1, Ordering::Relaxed);
        s
    }
}

#[test]
fn the_same_worker_threads_expand_every_level() {
    for liveness in [false, true] {
        let m = Wide::new(None);
        let mut c = Checker::new(&m).threads(2);
        if liveness {
            c = c.property(Property::eventually("deep", |s: &(u32, u32)| s.0 == 16));
        }
        let r = c.run();
        assert!(r.complete && r.holds(), "{:?}", r.verdict);
        // 1 + 2 + ... + 2048 states on the first 12 levels, then 3000 per level
        assert_eq!(r.states, 4095 + 5 * 3000);
        assert_eq!(r.max_depth, 17);
        let threads = m.threads.lock().unwrap();
        assert_eq!(
            threads.len(),
            2,
            "17 levels, one pair of worker threads: {threads:?}"
        );
        assert!(!threads.contains(&std::thread::current().id()));
        // each distinct state once, though two successors are generated per state
        assert_eq!(m.compacted.load(Ordering::Relaxed), r.states);
    }
}

#[test]
fn a_panicking_machine_ends_the_search_with_its_panic() {
    let m = Wide::new(Some((14, 2999)));
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Checker::new(&m).threads(2).run()
    }));
    let err = r.expect_err("the machine panicked");
    let msg = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("the machine fails at 14/2999"), "{msg}");
}
