//! Administration: reps and their roles, site settings, WebACD queues, the audit log.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::auth::{Admin, hash_password, validate_password, validate_username};
use crate::clock::now_millis;
use crate::error::{AppError, ErrorBody};
use crate::store::{
    Account, AccountChanges, AuditEntry, NewAccount, Queue, SiteAction, SiteSettings, SmtpSettings,
    TlsMode,
};

#[utoipa::path(
    get,
    path = "/api/admin/reps",
    tag = "admin",
    security(("tandem_login" = [])),
    responses(
        (status = 200, description = "Every account", body = [Account]),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 403, description = "The account is not an administrator", body = ErrorBody),
    )
)]
pub async fn reps(State(state): State<AppState>, _: Admin) -> Result<Json<Vec<Account>>, AppError> {
    Ok(Json(state.store.accounts().await?))
}

#[derive(Deserialize, ToSchema)]
pub struct NewRep {
    /// 1 to 32 letters, digits, dots, dashes or underscores; unique ignoring case.
    username: String,
    /// 1 to 64 printable characters (no bidi controls or invisible characters).
    display_name: String,
    /// At least 8 characters.
    password: String,
    #[serde(default)]
    is_admin: bool,
    #[serde(default)]
    is_webacd: bool,
}

/// The same rules as every name in a session (no bidi controls, nothing invisible, at
/// most 64 characters), so a rep's name never stops them starting a session.
fn valid_display_name(name: &str) -> Result<String, AppError> {
    tandem_session::valid_name(name)
        .map_err(|e| AppError::bad_request(format!("this display name cannot be used: {e}")))
}

#[utoipa::path(
    post,
    path = "/api/admin/reps",
    tag = "admin",
    security(("tandem_login" = [])),
    request_body = NewRep,
    responses(
        (status = 201, description = "The new account", body = Account),
        (status = 400, description = "A username, display name or password that is not allowed", body = ErrorBody),
        (status = 409, description = "The username is taken", body = ErrorBody),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 403, description = "The account is not an administrator", body = ErrorBody),
    )
)]
pub async fn create_rep(
    State(state): State<AppState>,
    Admin(me): Admin,
    Json(rep): Json<NewRep>,
) -> Result<(StatusCode, Json<Account>), AppError> {
    let username = rep.username.trim().to_owned();
    validate_username(&username)?;
    validate_password(&rep.password)?;
    let account = state
        .store
        .create_account(NewAccount {
            username,
            display_name: valid_display_name(&rep.display_name)?,
            password_hash: hash_password(&rep.password)?,
            is_admin: rep.is_admin,
            is_webacd: rep.is_webacd,
        })
        .await?;
    state.site_audit(
        Some(&me),
        SiteAction::AccountCreated {
            account: account.username.clone(),
            display_name: account.display_name.clone(),
            is_admin: account.is_admin,
            is_webacd: account.is_webacd,
        },
    );
    state.refresh_directory().await?;
    Ok((StatusCode::CREATED, Json(account)))
}

/// Only the fields present change.
#[derive(Deserialize, ToSchema)]
pub struct RepChanges {
    display_name: Option<String>,
    is_admin: Option<bool>,
    is_webacd: Option<bool>,
    disabled: Option<bool>,
    password: Option<String>,
}

#[utoipa::path(
    patch,
    path = "/api/admin/reps/{id}",
    tag = "admin",
    security(("tandem_login" = [])),
    params(("id" = i64, Path, description = "The id")),
    request_body = RepChanges,
    responses(
        (status = 200, description = "The account as changed; a disabled account or a changed role ends its live connections at once", body = Account),
        (status = 400, description = "A value that is not allowed, or an admin disabling themselves or removing their own admin role", body = ErrorBody),
        (status = 404, description = "No such account", body = ErrorBody),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 403, description = "The account is not an administrator", body = ErrorBody),
    )
)]
pub async fn update_rep(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
    Json(changes): Json<RepChanges>,
) -> Result<Json<Account>, AppError> {
    if id == me.id && (changes.disabled == Some(true) || changes.is_admin == Some(false)) {
        return Err(AppError::bad_request(
            "you cannot disable yourself or remove your own admin role",
        ));
    }
    let password_hash = match &changes.password {
        Some(p) => {
            validate_password(p)?;
            Some(hash_password(p)?)
        }
        None => None,
    };
    let display_name = changes
        .display_name
        .as_deref()
        .map(valid_display_name)
        .transpose()?;
    let before = state.store.account(id).await?;
    let account = state
        .store
        .update_account(
            id,
            AccountChanges {
                display_name: display_name.clone(),
                is_admin: changes.is_admin,
                is_webacd: changes.is_webacd,
                disabled: changes.disabled,
                password_hash,
            },
        )
        .await?;
    state.site_audit(
        Some(&me),
        SiteAction::AccountChanged {
            account: account.username.clone(),
            display_name,
            is_admin: changes.is_admin,
            is_webacd: changes.is_webacd,
            disabled: changes.disabled,
            password_set: changes.password.is_some(),
        },
    );
    // Disabling or a new role takes effect on live connections at once: they close, and
    // the rep logs in again (with the new role) or not at all.
    let revoked = changes.disabled == Some(true)
        || before
            .as_ref()
            .is_some_and(|b| b.is_admin != account.is_admin || b.is_webacd != account.is_webacd);
    if revoked {
        state.registry.revoke_account(account.id);
        // The account's reps are out of their sessions (on disk) before the answer.
        state.registry.written().await;
    }
    state.refresh_directory().await?;
    Ok(Json(account))
}

#[utoipa::path(
    get,
    path = "/api/admin/settings",
    tag = "admin",
    security(("tandem_login" = [])),
    responses(
        (status = 200, description = "The site settings (R4)", body = SiteSettings),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 403, description = "The account is not an administrator", body = ErrorBody),
    )
)]
pub async fn settings(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<SiteSettings>, AppError> {
    Ok(Json(state.store.settings().await?))
}

/// The highest file size limit an admin may set, in MB.
const MAX_FILE_MB: u32 = 100_000;
/// The longest retention an admin may set for recordings, in days (ten years).
const MAX_RETENTION_DAYS: u32 = 3650;

#[utoipa::path(
    put,
    path = "/api/admin/settings",
    tag = "admin",
    security(("tandem_login" = [])),
    request_body = SiteSettings,
    responses(
        (status = 200, description = "The saved settings", body = SiteSettings),
        (status = 400, description = "max_customers_per_rep outside 1 to 100, max_file_mb \
            above 100000, or recording_retention_days above 3650", body = ErrorBody),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 403, description = "The account is not an administrator", body = ErrorBody),
    )
)]
pub async fn save_settings(
    State(state): State<AppState>,
    Admin(me): Admin,
    Json(settings): Json<SiteSettings>,
) -> Result<Json<SiteSettings>, AppError> {
    if !(1..=100).contains(&settings.max_customers_per_rep) {
        return Err(AppError::bad_request(
            "the maximum number of customers per rep must be between 1 and 100",
        ));
    }
    if settings.max_file_mb > MAX_FILE_MB {
        return Err(AppError::bad_request(
            "the largest file must be at most 100000 MB (0 turns file transfer off)",
        ));
    }
    if settings.recording_retention_days > MAX_RETENTION_DAYS {
        return Err(AppError::bad_request(
            "recordings may be kept at most 3650 days (0 keeps them until deleted)",
        ));
    }
    state.store.save_settings(&settings).await?;
    state.site_audit(
        Some(&me),
        SiteAction::SettingsChanged {
            settings: serde_json::to_value(&settings).unwrap_or_default(),
        },
    );
    Ok(Json(settings))
}

#[utoipa::path(
    get,
    path = "/api/admin/queues",
    tag = "admin",
    security(("tandem_login" = [])),
    responses(
        (status = 200, description = "Every WebACD queue (R10)", body = [Queue]),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 403, description = "The account is not an administrator", body = ErrorBody),
    )
)]
pub async fn queues(State(state): State<AppState>, _: Admin) -> Result<Json<Vec<Queue>>, AppError> {
    Ok(Json(state.store.queues().await?))
}

#[derive(Deserialize, ToSchema)]
pub struct NewQueue {
    /// 1 to 64 printable characters.
    name: String,
}

#[utoipa::path(
    post,
    path = "/api/admin/queues",
    tag = "admin",
    security(("tandem_login" = [])),
    request_body = NewQueue,
    responses(
        (status = 201, description = "The new queue", body = Queue),
        (status = 400, description = "A name that is not allowed", body = ErrorBody),
        (status = 409, description = "A queue of that name exists", body = ErrorBody),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 403, description = "The account is not an administrator", body = ErrorBody),
    )
)]
pub async fn create_queue(
    State(state): State<AppState>,
    Admin(me): Admin,
    Json(queue): Json<NewQueue>,
) -> Result<(StatusCode, Json<Queue>), AppError> {
    let name = valid_display_name(&queue.name)
        .map_err(|_| AppError::bad_request("a queue name has 1 to 64 printable characters"))?;
    let queue = state.store.create_queue(&name, now_millis()).await?;
    state.site_audit(
        Some(&me),
        SiteAction::QueueCreated {
            queue: queue.name.clone(),
        },
    );
    state.refresh_directory().await?;
    Ok((StatusCode::CREATED, Json(queue)))
}

#[utoipa::path(
    delete,
    path = "/api/admin/queues/{id}",
    tag = "admin",
    security(("tandem_login" = [])),
    params(("id" = i64, Path, description = "The id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such queue", body = ErrorBody),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 403, description = "The account is not an administrator", body = ErrorBody),
    )
)]
pub async fn delete_queue(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
) -> Result<StatusCode, AppError> {
    let name = queue_name(&state, id).await?;
    state.store.delete_queue(id).await?;
    state.site_audit(Some(&me), SiteAction::QueueDeleted { queue: name });
    state.refresh_directory().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A queue's name, for the audit log; 404 when there is no such queue.
async fn queue_name(state: &AppState, id: i64) -> Result<String, AppError> {
    state
        .store
        .queues()
        .await?
        .into_iter()
        .find(|q| q.id == id)
        .map(|q| q.name)
        .ok_or_else(|| AppError::not_found("no such queue"))
}

#[derive(Deserialize, ToSchema)]
pub struct Members {
    /// Account ids; the list replaces the queue's members.
    members: Vec<i64>,
}

#[utoipa::path(
    put,
    path = "/api/admin/queues/{id}/members",
    tag = "admin",
    security(("tandem_login" = [])),
    params(("id" = i64, Path, description = "The id")),
    request_body = Members,
    responses(
        (status = 200, description = "The queue with its new members", body = Queue),
        (status = 404, description = "No such queue", body = ErrorBody),
        (status = 409, description = "A member id names no account", body = ErrorBody),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 403, description = "The account is not an administrator", body = ErrorBody),
    )
)]
pub async fn set_members(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
    Json(body): Json<Members>,
) -> Result<Json<Queue>, AppError> {
    // Read first: once the members are changed, the audit record must not depend on
    // another read succeeding.
    let accounts = state.store.accounts().await?;
    let queue = state.store.set_queue_members(id, &body.members).await?;
    let members = queue
        .members
        .iter()
        .map(|id| match accounts.iter().find(|a| a.id == *id) {
            Some(account) => account.username.clone(),
            None => format!("#{id}"),
        })
        .collect();
    state.site_audit(
        Some(&me),
        SiteAction::QueueMembersSet {
            queue: queue.name.clone(),
            members,
        },
    );
    state.refresh_directory().await?;
    Ok(Json(queue))
}

#[derive(Deserialize, ToSchema)]
pub struct QueueChanges {
    auto_assign: bool,
}

/// R10: whether the queue hands each session to the available agent with the fewest.
#[utoipa::path(
    patch,
    path = "/api/admin/queues/{id}",
    tag = "admin",
    security(("tandem_login" = [])),
    params(("id" = i64, Path, description = "The id")),
    request_body = QueueChanges,
    responses(
        (status = 200, description = "The queue as changed", body = Queue),
        (status = 404, description = "No such queue", body = ErrorBody),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 403, description = "The account is not an administrator", body = ErrorBody),
    )
)]
pub async fn update_queue(
    State(state): State<AppState>,
    Admin(me): Admin,
    Path(id): Path<i64>,
    Json(body): Json<QueueChanges>,
) -> Result<Json<Queue>, AppError> {
    let queue = state
        .store
        .set_queue_auto_assign(id, body.auto_assign)
        .await?;
    state.site_audit(
        Some(&me),
        SiteAction::QueueChanged {
            queue: queue.name.clone(),
            auto_assign: queue.auto_assign,
        },
    );
    state.refresh_directory().await?;
    Ok(Json(queue))
}

/// The mail settings as the admin page shows them: never the password itself.
#[derive(serde::Serialize, ToSchema)]
pub struct MailView {
    configured: bool,
    /// `admin` (set on this page), `config` (from the server's configuration) or null.
    #[schema(value_type = Option<String>)]
    source: Option<&'static str>,
    host: Option<String>,
    port: Option<u16>,
    tls: Option<TlsMode>,
    username: Option<String>,
    has_password: bool,
    from: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/admin/mail",
    tag = "admin",
    security(("tandem_login" = [])),
    responses(
        (status = 200, description = "How the server sends invitations (R3); never the password", body = MailView),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 403, description = "The account is not an administrator", body = ErrorBody),
    )
)]
pub async fn mail(State(state): State<AppState>, _: Admin) -> Result<Json<MailView>, AppError> {
    Ok(Json(mail_view(&state).await?))
}

async fn mail_view(state: &AppState) -> Result<MailView, AppError> {
    let saved = state.store.smtp_settings().await?;
    let source = match (&saved, &state.config.smtp) {
        (Some(_), _) => Some("admin"),
        (None, Some(_)) => Some("config"),
        (None, None) => None,
    };
    let settings = saved.or_else(|| state.config.smtp.clone());
    Ok(view_of(settings.as_ref(), source))
}

/// How `settings` show, from `source`: never the password itself.
fn view_of(settings: Option<&SmtpSettings>, source: Option<&'static str>) -> MailView {
    MailView {
        configured: settings.is_some(),
        source,
        host: settings.map(|s| s.host.clone()),
        port: settings.map(|s| s.port),
        tls: settings.map(|s| s.tls),
        username: settings.and_then(|s| s.username.clone()),
        has_password: settings.is_some_and(|s| s.password.is_some()),
        from: settings.map(|s| s.from.clone()),
    }
}

#[derive(Deserialize, ToSchema)]
pub struct MailChanges {
    host: String,
    port: u16,
    tls: TlsMode,
    #[serde(default)]
    username: Option<String>,
    /// Absent: keep the stored password.
    #[serde(default)]
    password: Option<String>,
    from: String,
}

#[utoipa::path(
    put,
    path = "/api/admin/mail",
    tag = "admin",
    security(("tandem_login" = [])),
    request_body = MailChanges,
    responses(
        (status = 200, description = "The saved settings", body = MailView),
        (status = 400, description = "No host, port 0, or a sender that is not an address", body = ErrorBody),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 403, description = "The account is not an administrator", body = ErrorBody),
    )
)]
pub async fn save_mail(
    State(state): State<AppState>,
    Admin(me): Admin,
    Json(changes): Json<MailChanges>,
) -> Result<Json<MailView>, AppError> {
    let host = changes.host.trim().to_owned();
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(AppError::bad_request("type the mail server's host name"));
    }
    if changes.port == 0 {
        return Err(AppError::bad_request(
            "the mail server's port must be 1 to 65535",
        ));
    }
    if changes.from.parse::<lettre::message::Mailbox>().is_err() {
        return Err(AppError::bad_request(format!(
            "{:?} is not a sender address; use name@example.com or Name <name@example.com>",
            tandem_protocol::excerpt(&changes.from, 80)
        )));
    }
    let username = changes.username.filter(|u| !u.trim().is_empty());
    let password = match changes.password.filter(|p| !p.is_empty()) {
        Some(p) => Some(p),
        None => state.store.smtp_settings().await?.and_then(|s| s.password),
    };
    let settings = SmtpSettings {
        host,
        port: changes.port,
        tls: changes.tls,
        username,
        password,
        from: changes.from.trim().to_owned(),
    };
    state.store.save_smtp_settings(Some(&settings)).await?;
    state.site_audit(
        Some(&me),
        SiteAction::MailChanged {
            settings: serde_json::to_value(view_of(Some(&settings), Some("admin")))
                .unwrap_or_default(),
        },
    );
    Ok(Json(mail_view(&state).await?))
}

#[utoipa::path(
    delete,
    path = "/api/admin/mail",
    tag = "admin",
    security(("tandem_login" = [])),
    responses(
        (status = 204, description = "The settings from this page are gone (the configuration file's, if any, apply again)"),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 403, description = "The account is not an administrator", body = ErrorBody),
    )
)]
pub async fn delete_mail(
    State(state): State<AppState>,
    Admin(me): Admin,
) -> Result<StatusCode, AppError> {
    state.store.save_smtp_settings(None).await?;
    state.site_audit(Some(&me), SiteAction::MailRemoved);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this session's entries (a session number).
    session: Option<String>,
    /// At most this many entries, 1 to 1000 (default 200).
    limit: Option<u32>,
}

#[utoipa::path(
    get,
    path = "/api/admin/audit",
    tag = "admin",
    security(("tandem_login" = [])),
    params(AuditQuery),
    responses(
        (status = 200, description = "Audit entries, newest first (C3), up to everything that \
            happened before the request (what is on its way to the store is stored first). \
            Records of the site (administrators' changes, logins) have an empty `session`; a \
            `session` filter leaves them out",
            body = [AuditEntry]),
        (status = 400, description = "`session` is not a session number", body = ErrorBody),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 403, description = "The account is not an administrator", body = ErrorBody),
    )
)]
pub async fn audit(
    State(state): State<AppState>,
    _: Admin,
    Query(q): Query<AuditQuery>,
) -> Result<Json<Vec<AuditEntry>>, AppError> {
    let session = match q.session.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => Some(
            s.parse::<tandem_protocol::SessionNumber>()
                .map_err(|e| AppError::bad_request(e.to_string()))?
                .digits(),
        ),
        None => None,
    };
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    // Records are stored after their change is written, a moment after anyone saw it:
    // the log shows everything up to now.
    state.flush().await;
    Ok(Json(state.store.audit(session.as_deref(), limit).await?))
}

/// The audit chain's state as the admin page shows it (C3).
#[derive(serde::Serialize, ToSchema)]
pub struct AuditChainView {
    intact: bool,
    /// Records checked: all of them when intact, those before the fault otherwise.
    records: u64,
    /// The newest record's hash, when intact and not empty: worth noting down elsewhere,
    /// since removing the newest records leaves a valid, shorter chain.
    head: Option<String>,
    /// The first record where the chain breaks.
    bad_record: Option<i64>,
    /// What is wrong there, as a sentence for the admin.
    problem: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/admin/audit/verify",
    tag = "admin",
    security(("tandem_login" = [])),
    responses(
        (status = 200, description = "Whether the audit log's hash chain is intact (C3)", body = AuditChainView),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 403, description = "The account is not an administrator", body = ErrorBody),
    )
)]
pub async fn audit_verify(
    State(state): State<AppState>,
    _: Admin,
) -> Result<Json<AuditChainView>, AppError> {
    use crate::store::audit_chain::ChainReport;
    // Like the log itself: up to everything that happened before the request.
    state.flush().await;
    Ok(Json(match state.store.verify_audit_chain().await? {
        ChainReport::Intact { records, head } => AuditChainView {
            intact: true,
            records,
            head,
            bad_record: None,
            problem: None,
        },
        ChainReport::Tampered {
            fault,
            intact_before,
        } => AuditChainView {
            intact: false,
            records: intact_before,
            head: None,
            bad_record: Some(fault.id()),
            problem: Some(fault.to_string()),
        },
    }))
}

/// "End every session" is not undone: the request says it means it.
#[derive(Deserialize, ToSchema)]
pub struct EndAllRequest {
    /// Must be `true` (missing counts as `false`).
    #[serde(default)]
    confirm: bool,
}

/// How many live sessions an administrator's "end every session" ended.
#[derive(serde::Serialize, ToSchema)]
pub struct EndedSessions {
    ended: usize,
}

#[utoipa::path(
    post,
    path = "/api/admin/sessions/end-all",
    tag = "admin",
    security(("tandem_login" = [])),
    request_body = EndAllRequest,
    responses(
        (status = 200, description = "Every live session was ended (reason `terminated`; each participant is told, and the audit log has it). A restart does not end sessions: this does", body = EndedSessions),
        (status = 400, description = "`confirm` is not `true` (or is missing)", body = ErrorBody),
        (status = 401, description = "No valid login cookie", body = ErrorBody),
        (status = 403, description = "The account is not an administrator", body = ErrorBody),
    )
)]
pub async fn end_all_sessions(
    State(state): State<AppState>,
    admin: Admin,
    Json(request): Json<EndAllRequest>,
) -> Result<Json<EndedSessions>, AppError> {
    if !request.confirm {
        return Err(AppError::bad_request(
            "send {\"confirm\": true} to end every live session; this cannot be undone",
        ));
    }
    let ended = state.registry.terminate_all(Some(&admin.0.username));
    tracing::info!(admin = %admin.0.username, ended, "every live session ended by an administrator");
    // After the sessions' own `ended` records, which reach the store once written.
    state.registry.written().await;
    state.site_audit(Some(&admin.0), SiteAction::SessionsEndedAll { ended });
    state.flush().await;
    Ok(Json(EndedSessions { ended }))
}
