//! `cas-http-auth-test`: an HTTP(S) endpoint that only authenticates (NTLM, Negotiate,
//! Basic), a test vehicle for cas-auth's HTTP authentication until the RPC proxy exists.
//! See `cas_server::http_auth_test`.

use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let args = cas_server::http_auth_test::Args::parse();
    cas_server::init_logging();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cas-http-auth-test: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        tokio::spawn(async move {
            #[cfg(unix)]
            if let Ok(mut term) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
                token.cancel();
                return;
            }
            let _ = tokio::signal::ctrl_c().await;
            token.cancel();
        });
        cas_server::http_auth_test::run(args, shutdown).await
    });
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cas-http-auth-test: {e}");
            ExitCode::FAILURE
        }
    }
}
