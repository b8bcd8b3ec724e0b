//! The `mdmhub` program built inside the test package, so that tests can
//! run it as a separate process (and kill it mid-sync).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    mdmhub::cli::main().await
}
