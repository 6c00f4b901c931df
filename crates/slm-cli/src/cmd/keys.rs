//! `slm keys add|list|revoke` (API keys for `slm serve`) and `slm audit verify`.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use slm_server::audit;
use slm_server::keys::{default_key_file, slm_home, KeyStore, Role};

#[derive(Args)]
#[command(
    about = "Manage API keys for slm serve (stored hashed; a key is shown once)",
    after_help = "Roles: viewer (list models, show, metrics), user (viewer + generate, chat, tokenize), \
admin (everything). A running server picks up added and revoked keys on its next request."
)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub action: KeysAction,
    /// Key file (default: $SLM_HOME/keys.json)
    #[arg(long = "file", global = true)]
    pub file: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum KeysAction {
    /// Create a key and print it (once)
    Add {
        /// viewer, user or admin
        #[arg(long, default_value = "user")]
        role: String,
        /// A label to recognise the key by
        #[arg(long, default_value = "")]
        name: String,
    },
    /// List keys (ids, roles, labels; never the keys)
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id
    Revoke { id: String },
}

pub fn run(args: &KeysArgs) -> Result<()> {
    let path = args.file.clone().unwrap_or_else(default_key_file);
    let mut store = KeyStore::load(&path)?;
    match &args.action {
        KeysAction::Add { role, name } => {
            let Some(role) = Role::parse(role) else {
                bail!("unknown role {role:?}: use viewer, user or admin");
            };
            let (rec, key) = store.add(role, name)?;
            store.save(&path)?;
            eprintln!(
                "added key {} ({}) to {}; store it now, it is not shown again:",
                rec.id,
                role.name(),
                path.display()
            );
            println!("{key}");
        }
        KeysAction::List { json } => {
            if *json {
                let v: Vec<_> = store
                    .keys
                    .iter()
                    .map(|k| serde_json::json!({"id": k.id, "role": k.role.name(), "name": k.name, "created": k.created, "revoked": k.revoked}))
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!("{:<12} {:<7} {:<8} name", "id", "role", "status");
                for k in &store.keys {
                    println!(
                        "{:<12} {:<7} {:<8} {}",
                        k.id,
                        k.role.name(),
                        if k.revoked { "revoked" } else { "active" },
                        k.name
                    );
                }
            }
        }
        KeysAction::Revoke { id } => {
            store.revoke(id)?;
            store.save(&path)?;
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}

#[derive(Args)]
#[command(about = "Check the server's audit log (hash chain)")]
pub struct AuditArgs {
    #[command(subcommand)]
    pub action: AuditAction,
}

#[derive(Subcommand)]
pub enum AuditAction {
    /// Verify the hash chain; fails at the first edited, removed or inserted record
    Verify {
        /// Log file (default: $SLM_HOME/audit.jsonl)
        file: Option<PathBuf>,
    },
}

pub fn run_audit(args: &AuditArgs) -> Result<()> {
    match &args.action {
        AuditAction::Verify { file } => {
            let path = file
                .clone()
                .unwrap_or_else(|| slm_home().join("audit.jsonl"));
            let v = audit::verify_log(&path)?;
            println!("{}: {v}", path.display());
        }
    }
    Ok(())
}
