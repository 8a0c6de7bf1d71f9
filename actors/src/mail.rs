//! Email delivery, the notification worker's last step: the [`Mailer`] port and its two
//! adapters, [`EmlFolder`] (the embedded default: one RFC 5322 `.eml` file per notification)
//! and [`SmtpMailer`] (production).
//!
//! Every message carries `Message-ID: <{notification id}@tourwise>`, and the folder names its
//! file after the notification id, so delivering the same notification again (after a crash
//! between sending and recording it) rewrites the same file instead of adding a second email;
//! an SMTP receiver sees the same Message-ID.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use uuid::Uuid;

/// One email to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mail {
    /// The notification it delivers (also its Message-ID).
    pub id: Uuid,
    /// The recipient's address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text body.
    pub body: String,
}

/// Why a delivery failed.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct MailError {
    /// Trying again cannot help (e.g. a malformed address, a 5xx SMTP answer).
    pub permanent: bool,
    /// What went wrong.
    pub message: String,
}

impl MailError {
    fn permanent(message: impl std::fmt::Display) -> Self {
        Self {
            permanent: true,
            message: message.to_string(),
        }
    }

    fn transient(message: impl std::fmt::Display) -> Self {
        Self {
            permanent: false,
            message: message.to_string(),
        }
    }
}

/// Delivers emails.
#[async_trait]
pub trait Mailer: std::fmt::Debug + Send + Sync + 'static {
    /// Delivers `mail`; delivering the same notification twice must not make two emails
    /// where the transport can prevent it.
    ///
    /// # Errors
    /// [`MailError`], permanent or not.
    async fn deliver(&self, mail: &Mail) -> Result<(), MailError>;
}

/// A mailer that only logs each email (at `debug`): the runtime's default where no email
/// is wanted (benchmarks, tests of other things). `serve` always configures a real one.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    async fn deliver(&self, mail: &Mail) -> Result<(), MailError> {
        tracing::debug!(id = %mail.id, to = %mail.to, subject = %mail.subject, "email (not sent)");
        Ok(())
    }
}

/// The message of `mail` from `from`.
///
/// # Errors
/// A permanent [`MailError`] for an address that does not parse.
pub fn message(from: &Mailbox, mail: &Mail) -> Result<Message, MailError> {
    let to: Mailbox = mail
        .to
        .parse()
        .map_err(|e| MailError::permanent(format!("bad recipient {:?}: {e}", mail.to)))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.subject.clone())
        .message_id(Some(format!("<{}@tourwise>", mail.id)))
        .header(ContentType::TEXT_PLAIN)
        .body(mail.body.clone())
        .map_err(MailError::permanent)
}

/// The embedded default: `{dir}/{notification id}.eml`, written atomically (a temporary file
/// renamed into place), so a reader never sees half an email.
#[derive(Debug, Clone)]
pub struct EmlFolder {
    dir: PathBuf,
    from: Mailbox,
}

impl EmlFolder {
    /// Writes into `dir` (created when missing) as `from`.
    ///
    /// # Errors
    /// When the folder cannot be created or `from` is not an address.
    pub fn new(dir: impl Into<PathBuf>, from: &str) -> Result<Self, MailError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|e| MailError::permanent(format!("mail folder {}: {e}", dir.display())))?;
        let from = from
            .parse()
            .map_err(|e| MailError::permanent(format!("bad sender {from:?}: {e}")))?;
        Ok(Self { dir, from })
    }

    /// Where the emails go.
    #[must_use]
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

#[async_trait]
impl Mailer for EmlFolder {
    async fn deliver(&self, mail: &Mail) -> Result<(), MailError> {
        let bytes = message(&self.from, mail)?.formatted();
        let path = self.dir.join(format!("{}.eml", mail.id));
        let partial = self.dir.join(format!(".{}.eml.partial", mail.id));
        tokio::fs::write(&partial, &bytes)
            .await
            .map_err(MailError::transient)?;
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(MailError::transient)
    }
}

/// SMTP through a relay given as a URL (`smtp://user:pass@host:587?tls=required`, see
/// lettre's `AsyncSmtpTransport::from_url`).
#[derive(Clone)]
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl std::fmt::Debug for SmtpMailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The transport holds the relay's credentials.
        f.debug_struct("SmtpMailer")
            .field("from", &self.from)
            .finish_non_exhaustive()
    }
}

impl SmtpMailer {
    /// A mailer for the relay at `url`, sending as `from`.
    ///
    /// # Errors
    /// A URL or sender that does not parse.
    pub fn new(url: &str, from: &str) -> Result<Self, MailError> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| MailError::permanent(format!("bad SMTP URL: {e}")))?
            .build();
        let from = from
            .parse()
            .map_err(|e| MailError::permanent(format!("bad sender {from:?}: {e}")))?;
        Ok(Self { transport, from })
    }

    /// Whether the relay answers (for readiness).
    pub async fn reachable(&self) -> bool {
        self.transport.test_connection().await.unwrap_or(false)
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn deliver(&self, mail: &Mail) -> Result<(), MailError> {
        let message = message(&self.from, mail)?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(MailError::permanent(e)),
            Err(e) => Err(MailError::transient(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(to: &str) -> Mail {
        Mail {
            id: Uuid::new_v4(),
            to: to.into(),
            subject: "Your tour on 1 Dec".into(),
            body: "See you at 09:00 UTC.".into(),
        }
    }

    #[tokio::test]
    async fn the_folder_writes_one_file_per_notification_however_often_delivered() {
        let dir = tempfile::tempdir().unwrap();
        let folder = EmlFolder::new(
            dir.path().join("mail"),
            "Tourwise <no-reply@tourwise.local>",
        )
        .unwrap();
        let m = mail("ana@example.com");
        folder.deliver(&m).await.unwrap();
        folder.deliver(&m).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(folder.dir()).unwrap().collect();
        assert_eq!(files.len(), 1);
        let text = std::fs::read_to_string(folder.dir().join(format!("{}.eml", m.id))).unwrap();
        assert!(text.contains("To: ana@example.com"), "{text}");
        assert!(text.contains("Subject: Your tour on 1 Dec"), "{text}");
        assert!(
            text.contains(&format!("Message-ID: <{}@tourwise>", m.id)),
            "{text}"
        );
        assert!(text.contains("See you at 09:00 UTC."), "{text}");
    }

    #[tokio::test]
    async fn a_bad_address_is_a_permanent_failure() {
        let dir = tempfile::tempdir().unwrap();
        let folder = EmlFolder::new(dir.path(), "no-reply@tourwise.local").unwrap();
        let err = folder.deliver(&mail("not an address")).await.unwrap_err();
        assert!(err.permanent, "{err}");
    }

    #[tokio::test]
    async fn an_unreachable_relay_is_a_transient_failure() {
        // Nothing listens on port 1 of loopback.
        let smtp = SmtpMailer::new("smtp://127.0.0.1:1", "no-reply@tourwise.local").unwrap();
        assert!(!smtp.reachable().await);
        let err = smtp.deliver(&mail("ana@example.com")).await.unwrap_err();
        assert!(!err.permanent, "{err}");
    }
}
