//! The `anvil` binary: [`anvil::Cli`] with the repository's example controllers
//! ([`anvil::registry`]) and `anvil new`.

/// The model checker allocates and frees many small objects on several threads.
#[global_allocator]
static GLOBAL: anvil::MiMalloc = anvil::MiMalloc;

fn main() {
    anvil::registry::cli().main()
}
