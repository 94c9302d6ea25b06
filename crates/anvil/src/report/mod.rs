//! Reports of a verification run beyond the terminal's text: [`html`] renders a
//! [`Report`] as one self-contained HTML page (`anvil verify <controller> --html FILE`): the
//! scope, the modelling assumptions, the results with their coverage, and every
//! counterexample as a sequence diagram with one lane per actor.

pub mod html;

pub use html::render_html;

use anvil_cluster_model::esr::Report;
use std::path::Path;

/// Writes the HTML report of `r` to `path` (replacing the file).
pub fn write_html(path: &Path, r: &Report) -> Result<(), String> {
    std::fs::write(path, render_html(r))
        .map_err(|e| format!("cannot write the HTML report {}: {e}", path.display()))
}
