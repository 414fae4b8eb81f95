//! The invitation mailer (R3): keeps every email invitation in the store, sends it off the
//! request path, tells the inviting rep where it stands, and sends failed ones again on
//! request. Nothing is lost: an invitation is stored before the first attempt.

use std::sync::{Arc, Weak};

use tandem_protocol::{ErrorCode, InviteState, ServerMessage};
use tokio::sync::mpsc;

use crate::live::{Registry, Seat};
use crate::mail::{self, Language};
use crate::store::{InvitationRecord, SmtpSettings, Store};

#[derive(Debug)]
pub enum MailJob {
    /// A new invitation (its `id` is assigned when stored).
    Send {
        invitation: InvitationRecord,
        /// The inviting rep's seat, told where the invitation stands.
        notify: Seat,
        /// The email's language: the inviting console's (not kept with the invitation).
        language: Language,
    },
    /// Send a failed invitation of this session again.
    Retry {
        id: i64,
        /// The rep's seat, in the session the invitation must belong to.
        notify: Seat,
        /// The email's language: the retrying console's.
        language: Language,
    },
}

pub type MailJobs = mpsc::UnboundedSender<MailJob>;

/// The mail settings in force: the admin's, else the configuration's.
pub async fn settings(
    store: &dyn Store,
    configured: Option<&SmtpSettings>,
) -> Option<SmtpSettings> {
    match store.smtp_settings().await {
        Ok(Some(settings)) => Some(settings),
        Ok(None) => configured.cloned(),
        Err(e) => {
            tracing::error!("could not read the mail settings: {e}");
            configured.cloned()
        }
    }
}

pub fn spawn(
    mut jobs: mpsc::UnboundedReceiver<MailJob>,
    store: Arc<dyn Store>,
    registry: Weak<Registry>,
    configured: Option<SmtpSettings>,
) {
    let mailer = Arc::new(Mailer {
        store,
        registry,
        configured,
    });
    tokio::spawn(async move {
        while let Some(job) = jobs.recv().await {
            let mailer = mailer.clone();
            // Each delivery runs on its own: a slow mail server holds up nobody else.
            tokio::spawn(async move { mailer.run(job).await });
        }
    });
}

struct Mailer {
    store: Arc<dyn Store>,
    registry: Weak<Registry>,
    configured: Option<SmtpSettings>,
}

impl Mailer {
    async fn run(&self, job: MailJob) {
        let (record, notify, language) = match job {
            MailJob::Send {
                invitation,
                notify,
                language,
            } => match self.store.create_invitation(&invitation).await {
                Ok(record) => (record, notify, language),
                Err(e) => {
                    tracing::error!("could not record an invitation: {e}");
                    self.refuse(
                        notify,
                        "the invitation could not be recorded; please try again".into(),
                    );
                    return;
                }
            },
            MailJob::Retry {
                id,
                notify,
                language,
            } => match self.store.invitation(id).await {
                Ok(Some(record))
                    if record.session == notify.number.digits() && record.state == "failed" =>
                {
                    (record, notify, language)
                }
                Ok(Some(record)) if record.session == notify.number.digits() => {
                    self.refuse(
                        notify,
                        format!("invitation {id} is {}, not failed", record.state),
                    );
                    return;
                }
                Ok(_) => {
                    self.refuse(notify, format!("this session has no invitation {id}"));
                    return;
                }
                Err(e) => {
                    tracing::error!("could not read invitation {id}: {e}");
                    self.refuse(
                        notify,
                        format!("could not read invitation {id}; please try again"),
                    );
                    return;
                }
            },
        };
        self.status(&record, notify, InviteState::Sending);
        let outcome = match settings(self.store.as_ref(), self.configured.as_ref()).await {
            Some(settings) => mail::send(&settings, &record, language).await,
            None => Err(
                "this server has no mail server configured; use your own email program \
                         or copy the join link"
                    .to_owned(),
            ),
        };
        let (state, reason) = match &outcome {
            Ok(()) => ("sent", None),
            Err(reason) => ("failed", Some(reason.as_str())),
        };
        if let Err(e) = self
            .store
            .set_invitation_state(record.id, state, reason)
            .await
        {
            tracing::error!(
                invitation = record.id,
                "could not record the invitation's state: {e}"
            );
        }
        match outcome {
            Ok(()) => {
                tracing::info!(invitation = record.id, "invitation sent");
                self.status(&record, notify, InviteState::Sent);
            }
            Err(reason) => {
                tracing::warn!(invitation = record.id, "invitation failed: {reason}");
                self.status(&record, notify, InviteState::Failed { reason });
            }
        }
    }

    fn status(&self, record: &InvitationRecord, to: Seat, state: InviteState) {
        let message = ServerMessage::InviteStatus {
            invite: u64::try_from(record.id).unwrap_or(0),
            invitee: record.invitee,
            address: record.address.clone(),
            state,
        };
        if let Some(registry) = self.registry.upgrade() {
            registry.notify(to, message);
        }
    }

    fn refuse(&self, to: Seat, message: String) {
        if let Some(registry) = self.registry.upgrade() {
            let error = ServerMessage::Error {
                code: ErrorCode::NotPermitted,
                message,
                request: Some("retry_invite".into()),
            };
            registry.notify(to, error);
        }
    }
}
