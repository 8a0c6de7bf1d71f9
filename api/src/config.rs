//! The command line and configuration (CONTRACT 1): every flag also reads an environment
//! variable; flags win.

use clap::{Args, Parser, Subcommand};

/// `tourwise`: the booking and assignment engine.
#[derive(Debug, Parser)]
#[command(name = "tourwise", version, about)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands of CONTRACT 1.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the engine and its HTTP API.
    Serve(Box<Config>),
    /// Apply database migrations and exit.
    Migrate(DatabaseArgs),
    /// Generate a city and a stream of payment events, run them through an embedded engine
    /// and print a summary.
    Simulate(crate::simulate::SimulateArgs),
}

/// Where the database is.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// SQLite (`sqlite://FILE?mode=rwc`) or PostgreSQL (`postgres://...`).
    #[arg(
        long,
        env = "TOURWISE_DATABASE_URL",
        default_value = "sqlite://tourwise.db?mode=rwc"
    )]
    pub database_url: String,
}

/// Everything `serve` reads.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address the HTTP API binds (port 0 picks a free port).
    #[arg(long, env = "TOURWISE_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: String,
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Kafka bootstrap servers; unset means the in-process event bus.
    #[arg(long, env = "TOURWISE_KAFKA_BROKERS")]
    pub kafka_brokers: Option<String>,
    /// Partitions of the Kafka topics created at start (existing topics are left alone).
    #[arg(long, env = "TOURWISE_KAFKA_PARTITIONS", default_value_t = 6, value_parser = clap::value_parser!(i32).range(1..=1024))]
    pub kafka_partitions: i32,
    /// Static Kafka consumer-group membership (`group.instance.id`), unique per process: a
    /// restarted process takes its partitions back at once instead of after the session timeout.
    #[arg(long, env = "TOURWISE_KAFKA_INSTANCE_ID")]
    pub kafka_instance_id: Option<String>,
    /// Redis URL; unset means the in-process availability view and rate limiter.
    #[arg(long, env = "TOURWISE_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key (`{prefix}:availability:{cell}`, `{prefix}:ratelimit:...`):
    /// deployments sharing one Redis keep apart by it.
    #[arg(long, env = "TOURWISE_REDIS_PREFIX", default_value = "tourwise")]
    pub redis_prefix: String,
    /// HS256 secret for access tokens; unset means a random one kept in the data dir.
    #[arg(long, env = "TOURWISE_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// An admin account that exists after start (created if missing).
    #[arg(long, env = "TOURWISE_ADMIN_EMAIL")]
    pub admin_email: Option<String>,
    /// The admin account's password.
    #[arg(long, env = "TOURWISE_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Matching policy: `nearest` (CONTRACT 5.4) or `balanced`.
    #[arg(long, env = "TOURWISE_POLICY", default_value = "nearest", value_parser = ["nearest", "balanced"])]
    pub policy: String,
    /// How long an assigned realtor has to accept before the tour goes to the next one
    /// (CONTRACT 5.2 `accept_timeout`), in seconds.
    #[arg(long, env = "TOURWISE_ACCEPT_TIMEOUT_SECS", default_value_t = 900, value_parser = clap::value_parser!(u64).range(1..=7 * 24 * 3600))]
    pub accept_timeout_secs: u64,
    /// Where generated state (the JWT secret) is kept; unset: the SQLite file's folder, or
    /// the working directory.
    #[arg(long, env = "TOURWISE_DATA_DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// Where listing media and realtor photos are stored: a folder (`file:///path` or a path;
    /// unset: `media/` in the data dir) or `s3://bucket[/prefix]` (credentials, region and
    /// `AWS_ENDPOINT_URL` from the environment).
    #[arg(long, env = "TOURWISE_MEDIA_URL")]
    pub media_url: Option<String>,
    /// Email.
    #[command(flatten)]
    pub mail: MailArgs,
    /// Tours whose `GET /tours/{id}` answers are kept in memory (0 turns the cache off).
    #[arg(long, env = "TOURWISE_TOUR_CACHE", default_value_t = 100_000)]
    pub tour_cache: u64,
    /// How long a cached tour answer is kept at most, in milliseconds. This process's own
    /// changes replace it at once; this bounds how stale a read can be when other processes
    /// change tours in the same database.
    #[arg(long, env = "TOURWISE_TOUR_CACHE_TTL_MS", default_value_t = 2_000)]
    pub tour_cache_ttl_ms: u64,
    /// Rate limits (CONTRACT 2).
    #[command(flatten)]
    pub limits: Limits,
}

/// Where the notification worker's emails go.
#[derive(Debug, Clone, clap::Args)]
pub struct MailArgs {
    /// SMTP relay (`smtp://user:pass@host:587?tls=required`, `smtps://...`); unset means
    /// RFC 5322 `.eml` files in `--mail-dir`.
    #[arg(long, env = "TOURWISE_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Folder of the `.eml` files without `--smtp-url` (default: `mail` in the data dir).
    #[arg(long, env = "TOURWISE_MAIL_DIR")]
    pub mail_dir: Option<std::path::PathBuf>,
    /// The sender of every email.
    #[arg(
        long,
        env = "TOURWISE_MAIL_FROM",
        default_value = "Tourwise <no-reply@tourwise.local>"
    )]
    pub mail_from: String,
    /// When reminders go out, in minutes before a tour's start (comma-separated).
    #[arg(
        long,
        env = "TOURWISE_REMINDER_MINUTES",
        value_delimiter = ',',
        default_value = "1440,60"
    )]
    pub reminder_minutes: Vec<u32>,
    /// The address users reach the API at, for links in emails (default: the bound address).
    #[arg(long, env = "TOURWISE_PUBLIC_URL")]
    pub public_url: Option<String>,
}

/// Rate limits (CONTRACT 2), each configurable.
#[derive(Debug, Clone, Args)]
pub struct Limits {
    /// Failed logins allowed per email per 15 minutes.
    #[arg(long, env = "TOURWISE_LOGIN_FAILURES_PER_EMAIL", default_value_t = 5)]
    pub login_failures_per_email: u32,
    /// Login attempts allowed per client IP per minute.
    #[arg(long, env = "TOURWISE_LOGIN_ATTEMPTS_PER_IP", default_value_t = 300)]
    pub login_attempts_per_ip: u32,
    /// Payment attempts allowed per customer per minute.
    #[arg(long, env = "TOURWISE_PAYMENTS_PER_CUSTOMER", default_value_t = 60)]
    pub payments_per_customer: u32,
}

impl Config {
    /// The data dir: configured, else the SQLite file's folder, else the working directory.
    #[must_use]
    pub fn data_dir(&self) -> std::path::PathBuf {
        if let Some(dir) = &self.data_dir {
            return dir.clone();
        }
        let url = &self.database.database_url;
        let file = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
            .map(|rest| rest.split('?').next().unwrap_or(rest))
            .filter(|f| !f.is_empty() && *f != ":memory:");
        file.and_then(|f| {
            std::path::Path::new(f)
                .parent()
                .map(std::path::Path::to_path_buf)
        })
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| std::path::PathBuf::from("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_embedded_ones() {
        let cli = Cli::try_parse_from(["tourwise", "serve"]).unwrap();
        let Command::Serve(c) = cli.command else {
            panic!("serve expected")
        };
        assert_eq!(c.http_addr, "127.0.0.1:8080");
        assert_eq!(c.database.database_url, "sqlite://tourwise.db?mode=rwc");
        assert_eq!(c.policy, "nearest");
        assert!(c.kafka_brokers.is_none() && c.redis_url.is_none());
        assert_eq!(c.mail.reminder_minutes, [1440, 60]);
        assert!(c.mail.smtp_url.is_none());
    }

    #[test]
    fn reminder_times_are_a_list_of_minutes() {
        let cli =
            Cli::try_parse_from(["tourwise", "serve", "--reminder-minutes", "90,15"]).unwrap();
        let Command::Serve(c) = cli.command else {
            panic!("serve")
        };
        assert_eq!(c.mail.reminder_minutes, [90, 15]);
        assert!(Cli::try_parse_from(["tourwise", "serve", "--reminder-minutes", "soon"]).is_err());
    }

    #[test]
    fn flags_parse_and_bad_policy_is_refused() {
        let cli = Cli::try_parse_from([
            "tourwise",
            "serve",
            "--http-addr",
            "127.0.0.1:0",
            "--policy",
            "balanced",
        ])
        .unwrap();
        let Command::Serve(c) = cli.command else {
            panic!("serve expected")
        };
        assert_eq!(
            (c.http_addr.as_str(), c.policy.as_str()),
            ("127.0.0.1:0", "balanced")
        );
        assert!(Cli::try_parse_from(["tourwise", "serve", "--policy", "random"]).is_err());
    }
}
