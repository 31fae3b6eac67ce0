use clap::Parser;

/// mimalloc for every allocation in the process: with its `override`
/// feature it also replaces malloc and free for libtorch. glibc's malloc
/// raises its mmap threshold each time a large block is freed, after which
/// tensors of that size come from heaps it rarely returns, so a tiled
/// upscale's peak grew with every region: 256 x 256 in 25 regions peaked
/// at 1046-1071 MiB with glibc, 747-762 MiB with mimalloc, in the same
/// 21.3-21.7 s (a fixed 256 KiB mmap threshold gave 627 MiB but took 40 s).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_env("PATCHSCALER_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = patchscaler::cli::Cli::parse();
    std::process::exit(patchscaler::cli::run(cli));
}
