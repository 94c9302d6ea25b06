use clap::Parser;

/// The model checker allocates and frees many small objects on several threads.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = anvil_cli::Cli::parse();
    std::process::exit(anvil_cli::dispatch(cli));
}
