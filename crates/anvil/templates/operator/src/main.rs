//! The `{{name}}` command: `verify`, `run`, `crd`, `manifests` and `list` for this crate's
//! controllers.

/// The model checker allocates and frees many small objects on several threads.
#[global_allocator]
static GLOBAL: anvil::MiMalloc = anvil::MiMalloc;

fn main() {
    anvil::Cli::new("{{name}}")
        .version(env!("CARGO_PKG_VERSION"))
        .about(env!("CARGO_PKG_DESCRIPTION"))
        .image("{{name}}:latest")
        .controller({{crate}}::controller())
        .main()
}
