//! `host-test`: run the s3-election component in wasmtime. See `host-test --help` and the
//! commands in `host_test::cmd`.

use clap::Parser;
use host_test::cmd::{self, Cli, Exit, EXIT_FAILED};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Virtual time: one thread, paused clock (it jumps ahead whenever every task waits).
    let runtime = if cmd::wants_virtual_time(&cli) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(EXIT_FAILED);
        }
    };
    match runtime.block_on(cmd::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = e.downcast_ref::<Exit>().map_or(EXIT_FAILED, |x| x.code);
            eprintln!("error: {e:#}");
            ExitCode::from(code)
        }
    }
}
