//! cart-service binary: parse the config, run the library.

use clap::Parser;
use std::process::ExitCode;

// jemalloc gives back what a burst of connections allocated (see service_kit::alloc); the
// binary chooses its allocator, the library does not.
#[global_allocator]
static ALLOCATOR: service_kit::alloc::Jemalloc = service_kit::alloc::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    service_kit::http::init_tracing();
    service_kit::alloc::return_freed_memory_in_the_background();
    let config = cart_service::Config::parse();
    match cart_service::run(config, service_kit::http::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("cart-service: {err}");
            ExitCode::FAILURE
        }
    }
}
