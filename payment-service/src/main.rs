//! payment-service binary: parse the config, run the library.

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    service_kit::http::init_tracing();
    let config = payment_service::Config::parse();
    match payment_service::run(config, service_kit::http::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("payment-service: {err}");
            ExitCode::FAILURE
        }
    }
}
