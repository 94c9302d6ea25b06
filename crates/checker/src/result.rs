//! Results and counterexamples.

use crate::machine::Machine;
use std::fmt;

/// One step of a trace: the action taken (or `None` for the initial state
/// and for a stuttering step) and the resulting (canonical) state.
pub struct Step<M: Machine> {
    /// `None` for the first state of a trace and for stuttering steps.
    pub action: Option<M::Action>,
    /// The state reached.
    pub state: M::State,
}

impl<M: Machine> Clone for Step<M> {
    fn clone(&self) -> Self {
        Step {
            action: self.action.clone(),
            state: self.state.clone(),
        }
    }
}
impl<M: Machine> fmt::Debug for Step<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Step")
            .field("action", &self.action)
            .field("state", &self.state)
            .finish()
    }
}

/// A counterexample.
pub enum Counterexample<M: Machine> {
    /// A finite path from an initial state (`steps[0].action == None`) to a
    /// state violating a safety property. Shortest possible (BFS).
    Path {
        /// The violated property.
        property: String,
        /// The path.
        steps: Vec<Step<M>>,
    },
    /// A lasso: `prefix` from an initial state (`prefix[0].action == None`) to
    /// the loop state `prefix.last()`, then `cycle`, a non-empty sequence of
    /// steps from the loop state back to it (`cycle.last().state ==
    /// prefix.last().state`), repeated forever. A cycle step with `action ==
    /// None` is a stuttering step (a one-step cycle `[None]` means "stutter
    /// forever").
    Lasso {
        /// The violated property.
        property: String,
        /// Path from an initial state to the loop state.
        prefix: Vec<Step<M>>,
        /// The repeated cycle.
        cycle: Vec<Step<M>>,
    },
}

impl<M: Machine> Counterexample<M> {
    /// Name of the violated property.
    pub fn property(&self) -> &str {
        match self {
            Counterexample::Path { property, .. } | Counterexample::Lasso { property, .. } => {
                property
            }
        }
    }
    /// True for a lasso.
    pub fn is_lasso(&self) -> bool {
        matches!(self, Counterexample::Lasso { .. })
    }
}

impl<M: Machine> Clone for Counterexample<M> {
    fn clone(&self) -> Self {
        match self {
            Counterexample::Path { property, steps } => Counterexample::Path {
                property: property.clone(),
                steps: steps.clone(),
            },
            Counterexample::Lasso {
                property,
                prefix,
                cycle,
            } => Counterexample::Lasso {
                property: property.clone(),
                prefix: prefix.clone(),
                cycle: cycle.clone(),
            },
        }
    }
}

impl<M: Machine> fmt::Debug for Counterexample<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Counterexample::Path { property, steps } => {
                writeln!(
                    f,
                    "safety counterexample for {property:?} ({} states):",
                    steps.len()
                )?;
                for (i, s) in steps.iter().enumerate() {
                    writeln!(f, "  {i}: {:?} -> {:?}", s.action, s.state)?;
                }
                Ok(())
            }
            Counterexample::Lasso {
                property,
                prefix,
                cycle,
            } => {
                writeln!(
                    f,
                    "liveness counterexample for {property:?}: prefix {} states, cycle {} steps",
                    prefix.len(),
                    cycle.len()
                )?;
                for (i, s) in prefix.iter().enumerate() {
                    writeln!(f, "  {i}: {:?} -> {:?}", s.action, s.state)?;
                }
                writeln!(f, "  -- cycle --")?;
                for (i, s) in cycle.iter().enumerate() {
                    writeln!(f, "  c{i}: {:?} -> {:?}", s.action, s.state)?;
                }
                Ok(())
            }
        }
    }
}

/// Status of one property after a run.
pub enum PropertyStatus<M: Machine> {
    /// Holds on the complete reachable graph.
    Holds,
    /// Violated, with a counterexample.
    Violated(Counterexample<M>),
    /// Not decided (search incomplete, or stopped at another violation).
    Unknown,
}

impl<M: Machine> fmt::Debug for PropertyStatus<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PropertyStatus::Holds => write!(f, "Holds"),
            PropertyStatus::Violated(c) => write!(f, "Violated({c:?})"),
            PropertyStatus::Unknown => write!(f, "Unknown"),
        }
    }
}

/// The overall verdict.
pub enum Verdict<M: Machine> {
    /// Every property holds and the search was complete.
    Holds,
    /// Some property is violated (the first one found). A violation is
    /// definitive even if the search stopped early.
    Violated(Counterexample<M>),
    /// The search stopped early and no violation was found: nothing is claimed.
    Incomplete {
        /// Why the search stopped (state limit, memory limit).
        reason: String,
    },
}

impl<M: Machine> fmt::Debug for Verdict<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Holds => write!(f, "Holds"),
            Verdict::Violated(c) => write!(f, "Violated({c:?})"),
            Verdict::Incomplete { reason } => write!(f, "Incomplete({reason})"),
        }
    }
}

/// Result of [`crate::Checker::run`].
pub struct CheckResult<M: Machine> {
    /// Overall verdict.
    pub verdict: Verdict<M>,
    /// True iff the whole reachable state space was explored.
    pub complete: bool,
    /// Per-property status, in the order the properties were given.
    pub properties: Vec<(String, PropertyStatus<M>)>,
    /// Distinct (canonical) states found.
    pub states: u64,
    /// Generated states: initial states plus every successor computed
    /// (including duplicates and stuttering self-loops), as TLC counts them.
    pub transitions: u64,
    /// Length of the longest shortest path, counted in states (TLC's "depth";
    /// initial states have depth 1).
    pub max_depth: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Peak memory: the process's peak resident set size where available
    /// (Linux `VmHWM`), otherwise the checker's own estimate.
    pub peak_memory_bytes: u64,
    /// Upper bound on the probability of a fingerprint collision
    /// (`states^2 / 2^65`), see [`crate::fingerprint`].
    pub collision_probability: f64,
}

impl<M: Machine> CheckResult<M> {
    /// True iff the verdict is `Holds` (implies `complete`).
    pub fn holds(&self) -> bool {
        matches!(self.verdict, Verdict::Holds)
    }
    /// The counterexample, if violated.
    pub fn counterexample(&self) -> Option<&Counterexample<M>> {
        match &self.verdict {
            Verdict::Violated(c) => Some(c),
            _ => None,
        }
    }
    /// Status of the named property.
    pub fn property(&self, name: &str) -> Option<&PropertyStatus<M>> {
        self.properties
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
    }
    /// One-line JSON summary (no counterexample).
    pub fn summary_json(&self) -> String {
        let verdict = match &self.verdict {
            Verdict::Holds => "holds".to_string(),
            Verdict::Violated(c) => format!("violated:{}", c.property()),
            Verdict::Incomplete { .. } => "incomplete".to_string(),
        };
        format!(
            "{{\"verdict\":{:?},\"complete\":{},\"unique_states\":{},\"generated_states\":{},\"max_depth\":{},\"seconds\":{:.3},\"peak_memory_bytes\":{},\"collision_probability\":{:e}}}",
            verdict,
            self.complete,
            self.states,
            self.transitions,
            self.max_depth,
            self.seconds,
            self.peak_memory_bytes,
            self.collision_probability
        )
    }
}

impl<M: Machine> fmt::Debug for CheckResult<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CheckResult")
            .field("verdict", &self.verdict)
            .field("complete", &self.complete)
            .field("properties", &self.properties)
            .field("states", &self.states)
            .field("transitions", &self.transitions)
            .field("max_depth", &self.max_depth)
            .field("seconds", &self.seconds)
            .field("peak_memory_bytes", &self.peak_memory_bytes)
            .finish()
    }
}

/// Progress report passed to the progress callback.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    /// Distinct states so far.
    pub states: u64,
    /// Generated states so far.
    pub transitions: u64,
    /// States waiting to be expanded.
    pub queue: u64,
    /// Current BFS depth (in states).
    pub depth: u64,
    /// Distinct states per second since the start.
    pub states_per_second: f64,
    /// Seconds since the start.
    pub seconds: f64,
    /// Current phase: "explore" (BFS), or "liveness" (called once before
    /// each liveness property is checked on the finished graph).
    pub phase: &'static str,
}

/// A progress callback (see [`crate::Checker::progress`]).
pub type ProgressFn<'a> = Box<dyn FnMut(&Progress) + Send + 'a>;
