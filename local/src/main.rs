//! `release-dashboard-local`: the whole dashboard on one machine — every API
//! function's router on 127.0.0.1, the in-memory store (or a
//! DynamoDB-compatible endpoint), and the demo fleet of fake clusters.

mod args;
mod demo;
mod kubeconfig;
mod outbox;

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use shared::clock::SystemClock;
use shared::config::FleetConfig;
use shared::context::ApiContext;
use shared::domain::Email;
use shared::fleet::FleetSource;
use shared::model::SnapshotRequest;
use shared::records::account::{self, Account, Role};
use shared::store::memory::MemoryStore;
use shared::store::{Condition, Store};
use snapshot::access::{AwsConnector, ClusterConnector, KubeTimeouts};
use snapshot::snapshotter::InProcessTrigger;
use snapshot::snapshotter::{SnapshotOptions, Snapshotter};

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
                println!("{}", fleet.summary());
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
            eprintln!("error: {}", shared::telemetry::error_chain(err.as_ref()));
            ExitCode::FAILURE
        }
    }
}

/// Where the clusters come from: the demo fleet or a kubeconfig.
enum Source {
    Demo(demo::Demo),
    Kubeconfig(Box<kubeconfig::KubeconfigConnector>),
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (source, fleet_text) = match &args.kubeconfig {
        None => {
            let demo = demo::Demo::start(args.services, args.demo_tick).await?;
            let text = demo.fleet_text();
            (Source::Demo(demo), text)
        }
        Some(path) => {
            let (file, contexts) = kubeconfig::read(path)?;
            let text = kubeconfig::fleet_text(&contexts);
            let others = Box::new(aws_connector());
            let connector =
                kubeconfig::KubeconfigConnector::new(file, KubeTimeouts::default(), others);
            (Source::Kubeconfig(Box::new(connector)), text)
        }
    };
    let (store, store_label): (Arc<dyn Store>, String) = match &args.dynamodb_endpoint {
        None => (Arc::new(MemoryStore::default()), "in-memory".to_owned()),
        Some(url) => {
            let store = demo::dynamodb_store(url).await?;
            let label = format!("DynamoDB at {url}, table {}", store.table());
            (Arc::new(store), label)
        }
    };
    let fleet = Arc::new(FleetSource::from_text(store.clone(), &fleet_text)?);
    let mail_dir = args.mail_dir.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("release-dashboard-mail-{}", std::process::id()))
    });
    let mailer =
        Arc::new(outbox::Outbox::create(&mail_dir).map_err(|e| {
            format!("cannot create the mail directory {}: {e}", mail_dir.display())
        })?);
    let (connector, demo): (Arc<dyn ClusterConnector>, _) = match source {
        Source::Demo(demo) => {
            let connector = aws_connector().with_deployed_local(fleet.deployed_local_clusters());
            (Arc::new(connector), Some(demo))
        }
        Source::Kubeconfig(connector) => (Arc::from(connector as Box<dyn ClusterConnector>), None),
    };
    let snapshotter = Arc::new(Snapshotter::new(
        store.clone(),
        connector,
        Arc::new(SystemClock),
        SnapshotOptions::default(),
    ));
    let moved = demo.as_ref().map(|d| d.moved.clone());
    let snapshots = tokio::spawn(snapshot_loop(fleet.clone(), snapshotter.clone(), moved));
    let trigger = Arc::new(InProcessTrigger::new(snapshotter, fleet.clone()));
    let clock = Arc::new(SystemClock);
    let hasher = auth::password::Hasher::new()?;
    let demo_password = demo_login(store.as_ref(), &hasher).await?;

    let policy = auth::Policy { admin_emails: args.admin_emails.clone(), ..Default::default() };
    let (auth_deps, _mail_jobs) = auth::Deps::in_process(
        store.clone(),
        fleet.clone(),
        mailer.clone(),
        clock.clone(),
        hasher,
        policy,
    )?;
    let app = axum::Router::new()
        .merge(auth::router(auth_deps))
        .merge(inventory::router(
            ApiContext::new(fleet.clone(), store.clone(), clock.clone()),
            trigger,
        ))
        .merge(dashboards::router(ApiContext::new(fleet.clone(), store.clone(), clock)));
    let app = shared::http::with_api_defaults(app, store.clone());

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port)).await.map_err(|e| {
        format!("cannot listen on 127.0.0.1:{}: {e} (pick another with --port, or --port 0 for any free one)", args.port)
    })?;
    let address = listener.local_addr()?;
    println!("release dashboard (local): listening on http://{address}");
    let config = fleet.current().await?;
    let clusters = config.environments.iter().map(|e| e.clusters.len()).sum::<usize>();
    match (&demo, &args.kubeconfig) {
        (Some(_), _) => println!(
            "  demo fleet: {} environments, {clusters} clusters, {} services on fake Kubernetes API servers, moving on every {} s",
            config.environments.len(),
            args.services,
            args.demo_tick.as_secs(),
        ),
        (None, Some(path)) => println!(
            "  clusters: the {clusters} contexts of {} (one environment each; dashboard \"kubeconfig\")",
            path.display()
        ),
        (None, None) => {}
    }
    println!("  store: {store_label}");
    println!("  mail (sign-up and reset codes): {}", mailer.dir().display());
    println!(
        "  demo login: {DEMO_EMAIL} / {} (an admin; new each start)",
        demo_password.expose_secret()
    );
    println!(
        "  routes: / (the web page), /health, /ready, /auth/*, /environments, /clusters, /images, /dashboards, /history; /openapi.json describes them"
    );
    // The peer's address is the client that per-client limits count.
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
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
    let email = Email::parse(DEMO_EMAIL)?;
    let account =
        Account::active(email, "Demo admin", hash, Role::Admin, Vec::new(), jiff::Timestamp::now());
    account::write(store, &account, Condition::Always).await?;
    Ok(password)
}

/// The production connector without AWS configuration: the demo's
/// clusters are given by endpoint and the kubeconfig's by context, and
/// loading the AWS defaults would probe for an instance role at start.
fn aws_connector() -> AwsConnector {
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build();
    AwsConnector::new(sdk, KubeTimeouts::default())
}

/// Snapshots every environment of the configuration in force now and then
/// at its refresh interval, as the schedule's sweep does in AWS
/// (environments added at run time included), and all of them whenever the
/// demo fleet moves on. Each cluster logs one line.
async fn snapshot_loop(
    fleet: Arc<FleetSource>,
    snapshotter: Arc<Snapshotter>,
    moved: Option<Arc<tokio::sync::Notify>>,
) {
    let mut last_run: HashMap<String, Instant> = HashMap::new();
    let mut running = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let demo_moved = async |moved: &Option<Arc<tokio::sync::Notify>>| match moved {
        Some(moved) => moved.notified().await,
        None => std::future::pending().await,
    };
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = demo_moved(&moved) => last_run.clear(),
        }
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
