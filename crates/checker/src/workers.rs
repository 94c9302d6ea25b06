//! The worker threads of one search: spawned once and kept for every BFS level.
//!
//! Spawning fresh threads per level threw away whatever the machine keeps per thread (the
//! cluster model's memo caches of `reconcile_core` steps, API-server steps and desired-state
//! predicates) at the end of every level, and paid for dropping it: a cold start at each of a
//! search's 50-90 levels. Workers that live for the whole search keep those caches warm.

use crate::expand::{ChunkOut, Item, Shared};
use crate::machine::{Fairness, Machine};
use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, mpsc};
use std::thread::Scope;
use std::time::Duration;

/// One level's frontier, in the chunks the workers claim.
pub(crate) type Frontier<S> = Vec<Mutex<Vec<Item<S>>>>;

/// A worker's cache of interned fairness keys.
pub(crate) type KeyCache<K> = HashMap<Fairness<K>, u32>;

type Outcome<S> = std::thread::Result<Vec<ChunkOut<S>>>;

/// Worker threads that expand levels on request ([`Workers::level`]). Dropping it ends them.
pub(crate) struct Workers<S> {
    jobs: Vec<mpsc::Sender<Arc<Frontier<S>>>>,
    results: mpsc::Receiver<Outcome<S>>,
}

impl<S: Send> Workers<S> {
    /// Spawns one worker per cache in `scope`, each expanding with `sh` and its own cache.
    pub(crate) fn spawn<'scope, 'env, M>(
        scope: &'scope Scope<'scope, 'env>,
        sh: &'scope Shared<'env, M>,
        caches: Vec<KeyCache<M::FairnessKey>>,
    ) -> Self
    where
        M: Machine<State = S>,
        S: 'scope,
    {
        let (done, results) = mpsc::channel();
        let jobs = caches
            .into_iter()
            .map(|mut cache| {
                let (tx, rx) = mpsc::channel::<Arc<Frontier<S>>>();
                let done = done.clone();
                scope.spawn(move || {
                    while let Ok(frontier) = rx.recv() {
                        let out = catch_unwind(AssertUnwindSafe(|| sh.work(&frontier, &mut cache)));
                        drop(frontier);
                        if done.send(out).is_err() {
                            break;
                        }
                    }
                });
                tx
            })
            .collect();
        Workers { jobs, results }
    }

    /// Expands every chunk of `frontier` with all workers and returns their outputs (in no
    /// particular order), calling `tick` about every 100 ms meanwhile. A worker's panic stops
    /// the search and is raised again here.
    pub(crate) fn level<M: Machine<State = S>>(
        &self,
        sh: &Shared<'_, M>,
        frontier: &Arc<Frontier<S>>,
        mut tick: impl FnMut(),
    ) -> Vec<ChunkOut<S>> {
        for job in &self.jobs {
            job.send(Arc::clone(frontier))
                .expect("a worker thread ended before the search did");
        }
        let mut outs = Vec::new();
        let mut done = 0;
        while done < self.jobs.len() {
            match self.results.recv_timeout(Duration::from_millis(100)) {
                Ok(Ok(mut out)) => {
                    outs.append(&mut out);
                    done += 1;
                }
                Ok(Err(panic)) => {
                    sh.stop.store(true, Ordering::SeqCst);
                    resume_unwind(panic)
                }
                Err(mpsc::RecvTimeoutError::Timeout) => tick(),
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        outs
    }
}
