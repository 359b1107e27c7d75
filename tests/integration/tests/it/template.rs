//! `template.yaml` against the code: every variable the template sets for a
//! function is one its settings read, and the settings start with nothing
//! but what the template sets (parameters given plausible values). A
//! renamed variable on either side fails here, not at a cold start in AWS.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde_norway::Value;
use shared::config::ConfigError;
use shared::settings::Lookup;

fn template() -> Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
    serde_norway::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// What a parameter or resource reference stands for at deploy time.
fn sample(reference: &str) -> String {
    match reference {
        "Table" => "release-dashboard-Table-1A2B3C".into(),
        "SnapshotFunction" => "release-dashboard-SnapshotFunction-1A2B3C".into(),
        "AuthMailerFunction" => "release-dashboard-AuthMailerFunction-1A2B3C".into(),
        "MailPerHour" => "500".into(),
        "FleetConfig" => "environments:\n  - name: dev\n    clusters:\n      - name: eks-dev\n        region: eu-west-1\n".into(),
        "MailSender" => "noreply@example.com".into(),
        "CodeKey" => "q83vEjv8gLKoXDdEJ2Zs4HaGuw4NVrSZJYd1z3B9R0o=".into(),
        "LoginEmailCode" => "false".into(),
        "HistoryRetention" => "90d".into(),
        "AdminEmails" | "AllowedEmailDomains" => String::new(),
        other => panic!("the test has no sample for !Ref {other}: add one"),
    }
}

/// A variable's value: plain text, or a `!Ref`.
fn value_of(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Tagged(tagged) if tagged.tag == "Ref" => sample(tagged.value.as_str().unwrap()),
        other => panic!("unexpected variable value {other:?}"),
    }
}

fn variables(environment: Option<&Value>) -> BTreeMap<String, String> {
    environment
        .and_then(|e| e.get("Variables"))
        .and_then(Value::as_mapping)
        .map(|vars| {
            vars.iter().map(|(k, v)| (k.as_str().unwrap().to_owned(), value_of(v))).collect()
        })
        .unwrap_or_default()
}

/// Each function's binary and the variables the template gives it
/// (globals included).
fn functions() -> BTreeMap<String, BTreeMap<String, String>> {
    let template = template();
    let globals = variables(template["Globals"]["Function"].get("Environment"));
    let resources = template["Resources"].as_mapping().unwrap();
    resources
        .values()
        .filter(|r| r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function"))
        .map(|r| {
            let binary = r["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap().to_owned();
            let mut vars = globals.clone();
            vars.extend(variables(r["Properties"].get("Environment")));
            (binary, vars)
        })
        .collect()
}

/// Runs a function's settings over the template's variables, recording
/// every name they ask for.
fn read(
    vars: &BTreeMap<String, String>,
    settings: impl Fn(Lookup<'_>) -> Result<(), ConfigError>,
) -> (Result<(), ConfigError>, BTreeSet<String>) {
    let asked = RefCell::new(BTreeSet::new());
    let lookup = |name: &str| {
        asked.borrow_mut().insert(name.to_owned());
        vars.get(name).cloned()
    };
    let result = settings(&lookup);
    (result, asked.into_inner())
}

/// Variables the process's runtime reads, not our code.
const READ_BY_THE_RUNTIME: &[&str] = &["MALLOC_ARENA_MAX"];

#[test]
fn the_snapshot_function_runs_with_the_malloc_arenas_its_benchmark_measured() {
    let functions = functions();
    assert_eq!(
        functions["snapshot"].get("MALLOC_ARENA_MAX").map(String::as_str),
        Some(snapshot::MALLOC_ARENA_MAX)
    );
}

#[test]
fn the_template_sets_exactly_the_variables_each_function_reads() {
    let functions = functions();
    assert_eq!(
        functions.keys().map(String::as_str).collect::<Vec<_>>(),
        ["auth", "auth-mailer", "dashboards", "inventory", "snapshot"]
    );
    for (binary, vars) in &functions {
        let (result, asked) = match binary.as_str() {
            "auth" => read(vars, |l| auth::Settings::from_vars(l).map(drop)),
            "auth-mailer" => read(vars, |l| auth::MailerSettings::from_vars(l).map(drop)),
            "dashboards" => read(vars, |l| dashboards::Settings::from_vars(l).map(drop)),
            "inventory" => read(vars, |l| inventory::Settings::from_vars(l).map(drop)),
            "snapshot" => read(vars, |l| snapshot::Settings::from_vars(l).map(drop)),
            other => panic!("a function the test does not know: {other}"),
        };
        if let Err(err) = result {
            panic!("{binary} does not start with the template's variables: {err}");
        }
        let unread: Vec<&String> = vars
            .keys()
            .filter(|name| !asked.contains(*name) && !READ_BY_THE_RUNTIME.contains(&name.as_str()))
            .collect();
        assert!(
            unread.is_empty(),
            "{binary}: the template sets {unread:?}, the code never reads them"
        );
    }
}

#[test]
fn a_variable_the_code_needs_and_the_template_drops_fails_the_check() {
    let mut vars = functions().remove("auth-mailer").unwrap();
    vars.remove("MAIL_SENDER");
    let (result, _) = read(&vars, |l| auth::MailerSettings::from_vars(l).map(drop));
    assert!(result.unwrap_err().to_string().contains("MAIL_SENDER"));
}
