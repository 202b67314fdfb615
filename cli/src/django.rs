//! `sealed-session django …` (placeholder until the Django reader lands).

/// Django subcommands.
#[derive(clap::Args)]
pub struct DjangoArgs {}

/// Runs a Django subcommand.
pub fn run(_args: DjangoArgs) -> Result<(), String> {
    Err("django support is not built yet".into())
}
