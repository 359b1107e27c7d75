//! `release-dashboard-local`: the whole dashboard on one machine — every API
//! function's router on 127.0.0.1, the in-memory store (or a
//! DynamoDB-compatible endpoint), and the demo fleet of fake clusters.

mod args;
mod demo;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use shared::auth::{Account, AccountStatus, Role, write_account};
use shared::clock::SystemClock;
use shared::config::FleetConfig;
use shared::domain::Email;
use shared::fleet::FleetSource;
use shared::snapshot::InProcessTrigger;
use shared::snapshot::access::{AwsConnector, KubeTimeouts};
use shared::snapshot::{SnapshotOptions, SnapshotRequest, Snapshotter};
use shared::store::memory::MemoryStore;
use shared::store::{Condition, Store};
use shared::view::ApiContext;

use crate::args::Args;

#[tokio::main]
async fn main() -> ExitCode {
    shared::telemetry::init();
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}\n\n{}", args::USAGE);
            return ExitCode::from(2);
        }
    };
    if args.help {
        println!("{}", args::USAGE);
        return ExitCode::SUCCESS;
    }
    if let Some(path) = &args.schedules {
        return match FleetConfig::from_path(path) {
            Ok(fleet) => {
                println!("{}", fleet.schedule_parameter());
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("error: {err}");
                ExitCode::FAILURE
            }
        };
    }
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", shared::http::error_chain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let demo = demo::Demo::start(args.services).await?;
    let (store, store_label): (Arc<dyn Store>, String) = match &args.dynamodb_endpoint {
        None => (Arc::new(MemoryStore::default()), "in-memory".to_owned()),
        Some(url) => {
            let store = demo::dynamodb_store(url).await?;
            let label = format!("DynamoDB at {url}, table {}", store.table());
            (Arc::new(store), label)
        }
    };
    let fleet = Arc::new(FleetSource::from_text(store.clone(), &demo.fleet_text())?);
    let mailer = Arc::new(shared::mail::MemoryMailer::default());
    let snapshotter = snapshotter(store.clone());
    let snapshots = tokio::spawn(snapshot_loop(fleet.clone(), snapshotter.clone()));
    let trigger = Arc::new(InProcessTrigger::new(snapshotter, fleet.clone()));
    let clock = Arc::new(SystemClock);
    let hasher = auth::password::Hasher::new()?;
    let demo_password = demo_login(store.as_ref(), &hasher).await?;

    let app = axum::Router::new()
        .merge(auth::router(auth::Deps {
            store: store.clone(),
            // Codes are kept in memory and logged as sent, never mailed.
            mailer: mailer.clone(),
            clock: Arc::new(SystemClock),
            hasher,
            codes: auth::secrets::CodeHasher::ephemeral()?,
            policy: auth::Policy::default(),
        }))
        .merge(inventory::router(inventory::Deps {
            context: ApiContext::new(fleet.clone(), store.clone(), clock.clone()),
            trigger,
        }))
        .merge(dashboards::router(ApiContext::new(fleet.clone(), store.clone(), clock)));
    let app = shared::http::with_api_defaults(app, store.clone());

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await.map_err(|e| {
        format!("cannot listen on 127.0.0.1:{}: {e} (pick another with --port, or --port 0 for any free one)", args.port)
    })?;
    let address = listener.local_addr()?;
    println!("release dashboard (local): listening on http://{address}");
    let config = fleet.current().await?;
    println!(
        "  demo fleet: {} environments, {} clusters, {} services on fake Kubernetes API servers",
        config.environments.len(),
        config.environments.iter().map(|e| e.clusters.len()).sum::<usize>(),
        args.services,
    );
    println!("  store: {store_label}");
    println!(
        "  demo login: {DEMO_EMAIL} / {} (an admin; new each start)",
        demo_password.expose_secret()
    );
    println!(
        "  routes: /health, /ready, /auth/* (sign-in; codes are logged as sent and kept in memory), /environments, /clusters, /images, /dashboards, /history; /openapi.json describes them"
    );
    axum::serve(listener, app).with_graceful_shutdown(shutdown()).await?;
    snapshots.abort();
    drop(demo);
    Ok(())
}

const DEMO_EMAIL: &str = "demo@example.com";

/// An admin account to sign in with, its password random for each start
/// (and replaced when the store already has the account).
async fn demo_login(
    store: &dyn Store,
    hasher: &auth::password::Hasher,
) -> Result<SecretString, Box<dyn std::error::Error + Send + Sync>> {
    let password = auth::secrets::new_token()?;
    let hash = hasher.hash(&auth::password::Password::new(password.clone())?)?;
    let now = jiff::Timestamp::now();
    let account = Account {
        email: Email::parse(DEMO_EMAIL)?,
        name: "Demo admin".into(),
        password_hash: hash,
        role: Role::Admin,
        teams: Vec::new(),
        status: AccountStatus::Active,
        created_at: now,
        verified_at: Some(now),
        sessions_valid_after: None,
    };
    write_account(store, &account, Condition::Always).await?;
    Ok(password)
}

fn snapshotter(store: Arc<dyn Store>) -> Arc<Snapshotter> {
    // The demo's clusters are given by endpoint, so no AWS account is needed.
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    let connector = Arc::new(AwsConnector::new(sdk, KubeTimeouts::default()));
    Arc::new(Snapshotter::new(store, connector, Arc::new(SystemClock), SnapshotOptions::default()))
}

/// Snapshots every environment of the configuration in force now and then
/// at its refresh interval, as the per-environment schedules do in AWS
/// (environments added at run time included). Each cluster logs one line.
async fn snapshot_loop(fleet: Arc<FleetSource>, snapshotter: Arc<Snapshotter>) {
    let mut last_run: HashMap<String, Instant> = HashMap::new();
    let mut running = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        while running.try_join_next().is_some() {}
        let config = match fleet.current().await {
            Ok(config) => config,
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the fleet configuration");
                continue;
            }
        };
        for environment in &config.environments {
            let due = last_run
                .get(environment.name.as_str())
                .is_none_or(|at| at.elapsed() >= environment.refresh_interval);
            if !due {
                continue;
            }
            last_run.insert(environment.name.to_string(), Instant::now());
            let (config, snapshotter) = (config.clone(), snapshotter.clone());
            let request = SnapshotRequest::environment(environment.name.clone());
            running.spawn(async move {
                if let Err(err) = snapshotter.run(&config, &request).await {
                    tracing::warn!(error = %err, "snapshot of an environment failed");
                }
            });
        }
    }
}

async fn shutdown() {
    let _ = tokio::signal::ctrl_c().await;
    println!("release dashboard (local): stopping");
}
