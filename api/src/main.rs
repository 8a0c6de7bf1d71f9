//! The `tourwise` binary (CONTRACT 1).

use std::process::ExitCode;

use api::config::{Cli, Command};
use clap::Parser;

#[actix_web::main]
async fn main() -> ExitCode {
    api::telemetry::init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(config) => serve(*config).await,
        Command::Migrate(db) => migrations::connect_and_migrate(&db.database_url)
            .await
            .map(|_| println!("migrations applied"))
            .map_err(|e| anyhow::anyhow!("migrations failed: {e}")),
        Command::Simulate(args) => api::simulate::run(&args).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, the whole cause chain (CONTRACT 1).
            eprintln!("tourwise: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: api::config::Config) -> anyhow::Result<()> {
    let bound = api::server::bind(&config).await?;
    println!("listening on http://{}", bound.addr);
    tracing::info!(addr = %bound.addr, policy = %config.policy, "serving");
    bound.run().await?;
    tracing::info!("stopped");
    Ok(())
}
