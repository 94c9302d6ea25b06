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
    /// A finite path from an initial state (`steps[0].action == None`)
    /// violating a safety property, shortest possible (BFS): for `[]P` its
    /// last state violates `P`; for `[][A]_s` its last step is a
    /// non-stuttering step `s -> t` with `!A(s, t)` (and the path up to `s`
    /// is a shortest path to `s`).
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

/// Status of one property after a run. Every property gets its own status:
/// a violation of one property never makes another one `Unknown`.
pub enum PropertyStatus<M: Machine> {
    /// Holds on the complete reachable graph.
    Holds,
    /// Violated, with a counterexample (a shortest path for a safety
    /// property, a fair lasso for a liveness property). Definitive even when
    /// the search stopped early.
    Violated(Counterexample<M>),
    /// Not decided: the search stopped early (state or memory limit) before
    /// a violation of this property was found.
    Unknown,
}

impl<M: Machine> PropertyStatus<M> {
    /// `"holds"`, `"violated"` or `"unknown"`.
    pub fn name(&self) -> &'static str {
        match self {
            PropertyStatus::Holds => "holds",
            PropertyStatus::Violated(_) => "violated",
            PropertyStatus::Unknown => "unknown",
        }
    }
    /// The counterexample, if violated.
    pub fn counterexample(&self) -> Option<&Counterexample<M>> {
        match self {
            PropertyStatus::Violated(c) => Some(c),
            _ => None,
        }
    }
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

/// The overall verdict, a summary of the per-property statuses (see
/// [`CheckResult::properties`] for each property's own verdict).
pub enum Verdict<M: Machine> {
    /// Every property holds and the search was complete.
    Holds,
    /// Some property is violated; this is the counterexample of the first
    /// violated property in the order the properties were given. A violation
    /// is definitive even if the search stopped early.
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
    /// True iff the whole reachable state space was explored. (A run whose
    /// properties are all safety properties stops as soon as all of them are
    /// violated; it is then incomplete, though every property is decided.)
    pub complete: bool,
    /// Why the search stopped before exploring the whole reachable space
    /// (`Some` iff `!complete`).
    pub stopped: Option<String>,
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
    /// Upper bound on the probability that two of the distinct states of
    /// this run share a 64-bit fingerprint (`states^2 / 2^65`, see
    /// [`crate::fingerprint::collision_probability`]); a collision could
    /// hide states, so a `Holds` verdict is exact only up to this bound.
    pub collision_probability: f64,
}

impl<M: Machine> CheckResult<M> {
    /// True iff the verdict is `Holds` (implies `complete`).
    pub fn holds(&self) -> bool {
        matches!(self.verdict, Verdict::Holds)
    }
    /// The counterexample of the overall verdict (the first violated
    /// property), if any.
    pub fn counterexample(&self) -> Option<&Counterexample<M>> {
        match &self.verdict {
            Verdict::Violated(c) => Some(c),
            _ => None,
        }
    }
    /// Every violated property with its counterexample, in property order.
    pub fn violations(&self) -> impl Iterator<Item = (&str, &Counterexample<M>)> {
        self.properties
            .iter()
            .filter_map(|(n, s)| Some((n.as_str(), s.counterexample()?)))
    }
    /// Status of the named property.
    pub fn property(&self, name: &str) -> Option<&PropertyStatus<M>> {
        self.properties
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
    }
    /// One-line JSON summary (no counterexample): the overall verdict, each
    /// property's status (`"properties":[{"name":..,"status":..}]` with
    /// status `"holds"`, `"violated"` or `"unknown"`), the counts,
    /// and the fingerprint collision bound.
    pub fn summary_json(&self) -> String {
        let verdict = match &self.verdict {
            Verdict::Holds => "holds".to_string(),
            Verdict::Violated(c) => format!("violated:{}", c.property()),
            Verdict::Incomplete { .. } => "incomplete".to_string(),
        };
        let properties: Vec<String> = self
            .properties
            .iter()
            .map(|(n, s)| {
                format!(
                    "{{\"name\":{},\"status\":{}}}",
                    json_str(n),
                    json_str(s.name())
                )
            })
            .collect();
        format!(
            "{{\"verdict\":{},\"properties\":[{}],\"complete\":{},\"unique_states\":{},\"generated_states\":{},\"max_depth\":{},\"seconds\":{:.3},\"peak_memory_bytes\":{},\"collision_probability\":{:e}}}",
            json_str(&verdict),
            properties.join(","),
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
            .field("collision_probability", &self.collision_probability)
            .field("stopped", &self.stopped)
            .finish()
    }
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
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
