//! Command-line flags of the local server.

pub const USAGE: &str =
    "usage: release-dashboard-local [--port N] [--dynamodb-endpoint URL] [--services N]

  --port N                   listen on 127.0.0.1:N (default 8080; 0 = any free port)
  --dynamodb-endpoint URL    keep data in a DynamoDB-compatible endpoint instead of memory
  --services N               services in the demo fleet (default 60)
  --schedules FLEET_FILE     print the template's EnvironmentSchedules parameter for a fleet file";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    pub port: u16,
    pub dynamodb_endpoint: Option<String>,
    pub services: usize,
    pub schedules: Option<std::path::PathBuf>,
    pub help: bool,
}

impl Args {
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut parsed = Self {
            port: 8080,
            dynamodb_endpoint: None,
            services: 60,
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
                "--schedules" => parsed.schedules = Some(value()?.into()),
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
        ])
        .unwrap();
        assert_eq!((args.port, args.services), (0, 12));
        assert_eq!(args.dynamodb_endpoint.as_deref(), Some("http://127.0.0.1:8000"));
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(parse(&["--port"]).is_err());
        assert!(parse(&["--port", "99999"]).is_err());
        assert!(parse(&["--services", "0"]).is_err());
        assert!(parse(&["--dynamodb-endpoint", "localhost:8000"]).is_err());
        assert!(parse(&["--verbose"]).is_err());
    }
}
