//! The `mdmhub` binary.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    mdmhub::cli::main().await
}
