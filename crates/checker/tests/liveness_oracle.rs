//! Differential test of the liveness checker against a brute-force oracle.
//!
//! Thousands of random small graph machines (1..=7 states, random edges with
//! self-loops, parallel edges and listed-but-disabled actions, random
//! fairness per edge: `Unfair`, `Finite`, `Weak(k)`, `Strong(k)` with `k` in {0, 1},
//! random initial states, random predicate bits) are checked against every
//! liveness shape at once, and each property's verdict is compared with an
//! oracle that knows nothing about SCCs, tableaux or the checker's lassos.
//!
//! **The oracle.** On a finite graph every behaviour is a finite prefix
//! followed by an infinite part that stays in the set `C` of states visited
//! infinitely often, using the set `E` of steps taken infinitely often; `C`
//! is strongly connected via `E` (a single state may stutter forever, with
//! `E` empty). `E` holds no `Finite` step (those are taken finitely often), so
//! `C` is strongly connected via the other steps; the prefix may take any
//! step. Fairness (machine.rs) depends only on `(C, E)`: weak instance
//! `f` is violated iff `f` is enabled (by a non-stuttering step) in every
//! state of `C` and no step of `E` is an `f` step; strong `f` iff it is
//! enabled in some state of `C` and no step of `E` is an `f` step. Every
//! property shape depends only on the prefix's states and on `C`, and adding
//! steps inside `C` to `E` never breaks connectivity nor fairness, so it is
//! enough to try `E` = all non-stuttering, non-`Finite` steps inside `C`. The oracle
//! therefore enumerates **every subset** `C` of the reachable states, keeps
//! those that are strongly connected and fair, and asks whether a behaviour
//! ending in `C` violates the property, written directly from its LTL
//! meaning (`reach(S, ok)`: states reachable from `S` through `ok` states):
//!
//! | property      | violated by a fair `C` iff                                                |
//! |---------------|---------------------------------------------------------------------------|
//! | `<>P`         | `C` all `!P`, and `C` meets `reach(init, !P)`                             |
//! | `[]<>P`       | `C` all `!P`                                                              |
//! | `<>[]P`       | `C` has a `!P` state                                                      |
//! | `P ~> Q`      | `C` all `!Q`, and `C` meets `reach(reachable P /\ !Q states, !Q)`         |
//! | `P ~> []Q`    | `C` has a `!Q` state, and `C` meets `reach(reachable P states, any)`      |
//! | `[]P ~> []Q`  | `C` all `P` and has a `!Q` state                                          |
//!
//! Every lasso the checker reports is replayed by `anvil_checker::validate`.
//! Reproduce one graph with `ORACLE_SEED=<seed> ORACLE_GRAPHS=1`.
use anvil_checker::*;

const GRAPHS: u64 = 20_000;
const BASE_SEED: u64 = 0x5eed_0fa1;

/// xorshift64* (deterministic, seeded; never zero state).
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Self {
        // splitmix64 the seed so that consecutive seeds give unrelated streams
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Clone, Debug)]
struct Edge {
    from: u8,
    to: u8,
    fair: Fairness<u8>,
    /// Listed by `actions` but `next_state` returns `None` when false.
    enabled: bool,
}

/// A random graph machine; states are `0..n`, actions are edge indices.
#[derive(Clone, Debug)]
struct Graph {
    n: u8,
    init: Vec<u8>,
    edges: Vec<Edge>,
    p: u8,
    q: u8,
}

impl Machine for Graph {
    type State = u8;
    type Action = usize;
    type FairnessKey = u8;
    fn init_states(&self) -> Vec<u8> {
        self.init.clone()
    }
    fn actions(&self, s: &u8, out: &mut Vec<usize>) {
        out.extend((0..self.edges.len()).filter(|&i| self.edges[i].from == *s));
    }
    fn next_state(&self, s: &u8, a: &usize) -> Option<u8> {
        let e = &self.edges[*a];
        (e.from == *s && e.enabled).then_some(e.to)
    }
    fn fairness(&self, _s: &u8, a: &usize) -> Fairness<u8> {
        self.edges[*a].fair.clone()
    }
}

fn random_graph(seed: u64) -> Graph {
    let mut r = Rng::new(seed);
    let n = 1 + r.below(7) as u8;
    let mut init: Vec<u8> = (0..1 + r.below(2))
        .map(|_| r.below(n as u64) as u8)
        .collect();
    init.dedup();
    let mut edges = Vec::new();
    for from in 0..n {
        for _ in 0..r.below(4) {
            let to = r.below(n as u64) as u8;
            let fair = match r.below(5) {
                0 => Fairness::Unfair,
                1 if r.below(2) == 0 => Fairness::Unfair,
                1 => Fairness::Finite,
                2 => Fairness::Weak(r.below(2) as u8),
                3 => Fairness::Strong(r.below(2) as u8),
                // a per-edge key: often the only edge of its instance
                _ => Fairness::Weak(2 + from),
            };
            let enabled = r.below(10) != 0;
            edges.push(Edge {
                from,
                to,
                fair,
                enabled,
            });
        }
    }
    let p = r.next() as u8;
    let q = r.next() as u8;
    Graph {
        n,
        init,
        edges,
        p,
        q,
    }
}

type Set = u32;

fn bit(s: Set, v: u8) -> bool {
    s >> v & 1 == 1
}

/// The oracle: for each of the six shapes, is there a fair violating `C`?
struct Oracle<'g> {
    g: &'g Graph,
    /// Enabled non-stuttering steps.
    steps: Vec<&'g Edge>,
}

impl<'g> Oracle<'g> {
    fn new(g: &'g Graph) -> Self {
        let steps = g
            .edges
            .iter()
            .filter(|e| e.enabled && e.from != e.to)
            .collect();
        Oracle { g, steps }
    }
    /// States reachable from `from` (those in `ok`) through `ok` states.
    fn reach(&self, from: Set, ok: Set) -> Set {
        self.reach_by(from, ok, |_| true)
    }
    /// [`Oracle::reach`] through the steps `step` allows.
    fn reach_by(&self, from: Set, ok: Set, step: impl Fn(&Edge) -> bool) -> Set {
        let mut seen = from & ok;
        loop {
            let mut next = seen;
            for e in &self.steps {
                if step(e) && bit(seen, e.from) && bit(ok, e.to) {
                    next |= 1 << e.to;
                }
            }
            if next == seen {
                return seen;
            }
            seen = next;
        }
    }
    /// Strongly connected through steps that may be taken infinitely often.
    fn strongly_connected(&self, c: Set) -> bool {
        let infinitely = |e: &Edge| e.fair != Fairness::Finite;
        (0..self.g.n)
            .filter(|&v| bit(c, v))
            .all(|v| self.reach_by(1 << v, c, infinitely) == c)
    }
    fn fair(&self, c: Set) -> bool {
        let mut obligations: Vec<&Fairness<u8>> = self
            .steps
            .iter()
            .map(|e| &e.fair)
            .filter(|f| f.is_fair())
            .collect();
        obligations.sort();
        obligations.dedup();
        obligations.iter().all(|f| {
            let enabled_at = |v: u8| self.steps.iter().any(|e| e.from == v && &e.fair == *f);
            let taken = self
                .steps
                .iter()
                .any(|e| bit(c, e.from) && bit(c, e.to) && &e.fair == *f);
            let states = (0..self.g.n).filter(|&v| bit(c, v));
            match f {
                Fairness::Weak(_) => taken || !states.clone().all(enabled_at),
                Fairness::Strong(_) => taken || !states.clone().any(enabled_at),
                Fairness::Unfair | Fairness::Finite => true,
            }
        })
    }
    /// Verdicts (violated?) for the six shapes, in `shapes()` order.
    fn verdicts(&self) -> [bool; 6] {
        let g = self.g;
        let all: Set = (1 << g.n) - 1;
        let inits: Set = g.init.iter().fold(0, |s, &v| s | 1 << v);
        let reachable = self.reach(inits, all);
        let (p, q) = (g.p as Set & all, g.q as Set & all);
        let (np, nq) = (all & !p, all & !q);
        let eventually_prefix = self.reach(inits, np);
        let leads_to_prefix = self.reach(reachable & p & nq, nq);
        let leads_to_always_prefix = self.reach(reachable & p, all);
        let mut out = [false; 6];
        for c in 1..=all {
            if c & !reachable != 0 || !self.strongly_connected(c) || !self.fair(c) {
                continue;
            }
            let within = |s: Set| c & !s == 0;
            let meets = |s: Set| c & s != 0;
            out[0] |= within(np) && meets(eventually_prefix);
            out[1] |= within(np);
            out[2] |= meets(np);
            out[3] |= within(nq) && meets(leads_to_prefix);
            out[4] |= meets(nq) && meets(leads_to_always_prefix);
            out[5] |= within(p) && meets(nq);
        }
        out
    }
}

fn shapes(g: &Graph) -> Vec<Property<Graph>> {
    let (p, q) = (g.p, g.q);
    let pp = move |s: &u8| p >> s & 1 == 1;
    let qq = move |s: &u8| q >> s & 1 == 1;
    vec![
        Property::eventually("<>P", pp),
        Property::always_eventually("[]<>P", pp),
        Property::eventually_always("<>[]P", pp),
        Property::leads_to("P ~> Q", pp, qq),
        Property::leads_to_always("P ~> []Q", pp, qq),
        Property::stable_leads_to_always("[]P ~> []Q", pp, qq),
    ]
}

#[test]
fn liveness_agrees_with_brute_force_oracle() {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let base = env("ORACLE_SEED").unwrap_or(BASE_SEED);
    let graphs = env("ORACLE_GRAPHS").unwrap_or(GRAPHS);
    let mut mismatches = Vec::new();
    let mut counts = [[0u64; 2]; 6];
    for i in 0..graphs {
        let seed = base.wrapping_add(i);
        let g = random_graph(seed);
        let expected = Oracle::new(&g).verdicts();
        let props = shapes(&g);
        let threads = if i % 16 == 0 { 2 } else { 1 };
        let r = Checker::new(&g)
            .threads(threads)
            .properties(props.clone())
            .run();
        assert!(r.complete, "seed {seed}: incomplete run\n{g:#?}");
        for (k, (p, (_, status))) in props.iter().zip(&r.properties).enumerate() {
            let got = match status {
                PropertyStatus::Holds => false,
                PropertyStatus::Violated(cx) => {
                    if let Err(e) = validate(&g, p, cx) {
                        mismatches.push(format!(
                            "seed {seed}: {}: invalid counterexample: {e}\n{cx:?}\n{g:#?}",
                            p.name
                        ));
                    }
                    true
                }
                PropertyStatus::Unknown => panic!("seed {seed}: {} unknown", p.name),
            };
            counts[k][got as usize] += 1;
            if got != expected[k] {
                mismatches.push(format!(
                    "seed {seed}: {}: checker says {}, oracle says {}\n{status:?}\n{g:#?}",
                    p.name,
                    if got { "violated" } else { "holds" },
                    if expected[k] { "violated" } else { "holds" },
                ));
            }
        }
        if mismatches.len() >= 5 {
            break;
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatch(es):\n{}",
        mismatches.len(),
        mismatches.join("\n\n")
    );
    // the random graphs exercise both verdicts of every shape
    if graphs == GRAPHS {
        for (k, [holds, violated]) in counts.iter().enumerate() {
            assert!(
                *holds >= graphs / 20 && *violated >= graphs / 20,
                "shape {k}: holds {holds}, violated {violated}"
            );
        }
    }
    eprintln!("{graphs} graphs, [holds, violated] per shape: {counts:?}");
}
