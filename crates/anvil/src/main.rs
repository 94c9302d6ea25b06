use clap::Parser;

fn main() {
    let cli = anvil_cli::Cli::parse();
    std::process::exit(anvil_cli::dispatch(cli));
}
