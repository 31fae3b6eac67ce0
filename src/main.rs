use clap::Parser;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("PATCHSCALER_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = patchscaler::cli::Cli::parse();
    std::process::exit(patchscaler::cli::run(cli));
}
