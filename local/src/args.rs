//! Command-line flags of the local server.

use shared::domain::Email;

pub const USAGE: &str = "usage: release-dashboard-local [options]

  --port N                   listen on 127.0.0.1:N (default 8080; 0 = any free port)
  --dynamodb-endpoint URL    keep data in a DynamoDB-compatible endpoint instead of memory
  --services N               services in the demo fleet (default 60)
  --demo-tick SECONDS        how often the demo fleet moves on: new releases, promotions,
                             scenarios (default 60; 0 = never)
  --kubeconfig PATH          snapshot the clusters of a kubeconfig (each context a cluster,
                             one environment per context) instead of the demo fleet
  --mail-dir DIR             write mail (sign-up and reset codes) there as .eml files
                             (default: a new directory under the system's temp dir)
  --admin-email EMAIL        this address becomes an admin when it signs up (repeatable)
  --check FLEET_FILE         validate a fleet file (every problem at its key) and summarise it";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub port: u16,
    pub dynamodb_endpoint: Option<String>,
    pub services: usize,
    pub demo_tick: std::time::Duration,
    pub kubeconfig: Option<std::path::PathBuf>,
    pub mail_dir: Option<std::path::PathBuf>,
    pub admin_emails: Vec<Email>,
    /// `--check`: a fleet file to validate.
    pub schedules: Option<std::path::PathBuf>,
    pub help: bool,
}

impl Args {
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut parsed = Self {
            port: 8080,
            dynamodb_endpoint: None,
            services: 60,
            demo_tick: std::time::Duration::from_secs(60),
            kubeconfig: None,
            mail_dir: None,
            admin_emails: Vec::new(),
            schedules: None,
            help: false,
        };
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
            match flag.as_str() {
                "--port" => {
                    parsed.port =
                        value()?.parse().map_err(|_| "--port takes a number from 0 to 65535")?
                }
                "--dynamodb-endpoint" => {
                    let url = value()?;
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        return Err("--dynamodb-endpoint takes an http(s):// URL".into());
                    }
                    parsed.dynamodb_endpoint = Some(url);
                }
                "--services" => {
                    parsed.services = value()?
                        .parse()
                        .ok()
                        .filter(|n| (1..=500).contains(n))
                        .ok_or("--services takes a number from 1 to 500")?;
                }
                "--demo-tick" => {
                    let seconds: u64 = value()?
                        .parse()
                        .ok()
                        .filter(|n| *n <= 86_400)
                        .ok_or("--demo-tick takes a number of seconds from 0 to 86400")?;
                    parsed.demo_tick = std::time::Duration::from_secs(seconds);
                }
                "--kubeconfig" => parsed.kubeconfig = Some(value()?.into()),
                "--mail-dir" => parsed.mail_dir = Some(value()?.into()),
                "--admin-email" => {
                    let email = Email::parse(value()?)
                        .map_err(|_| "--admin-email takes an email address")?;
                    parsed.admin_emails.push(email);
                }
                "--check" => parsed.schedules = Some(value()?.into()),
                "-h" | "--help" => parsed.help = true,
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Args, String> {
        Args::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults_and_flags() {
        assert_eq!(parse(&[]).unwrap().port, 8080);
        let args = parse(&[
            "--port",
            "0",
            "--dynamodb-endpoint",
            "http://127.0.0.1:8000",
            "--services",
            "12",
            "--demo-tick",
            "5",
            "--admin-email",
            "Ops@Example.com",
            "--kubeconfig",
            "/tmp/kc",
        ])
        .unwrap();
        assert_eq!((args.port, args.services), (0, 12));
        assert_eq!(args.demo_tick, std::time::Duration::from_secs(5));
        assert_eq!(args.admin_emails[0].as_str(), "ops@example.com");
        assert_eq!(args.kubeconfig.as_deref(), Some(std::path::Path::new("/tmp/kc")));
        assert_eq!(args.dynamodb_endpoint.as_deref(), Some("http://127.0.0.1:8000"));
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(parse(&["--port"]).is_err());
        assert!(parse(&["--port", "99999"]).is_err());
        assert!(parse(&["--services", "0"]).is_err());
        assert!(parse(&["--dynamodb-endpoint", "localhost:8000"]).is_err());
        assert!(parse(&["--verbose"]).is_err());
        assert!(parse(&["--demo-tick", "-1"]).is_err());
        assert!(parse(&["--admin-email", "not-an-address"]).is_err());
    }
}
