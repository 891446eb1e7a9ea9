//! Profiles, follows, posts and tips: `GET /v1/people/{handle}`, `POST /v1/me/profile`,
//! `POST|DELETE /v1/people/{handle}/follow`, `POST /v1/posts`, `GET /v1/posts/{id}`,
//! `GET /v1/people/{handle}/posts`, `GET /v1/feed` and `POST /v1/tips`.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use mizan_app::apps::Scope;
use mizan_app::creation::Creation;
use mizan_app::payments::{self, Note, PaymentError};
use mizan_app::social::{
    self, Audience, MinimumTier, PostText, PostView, ProfileEdit, ProfileView, SocialError, Viewer,
};
use mizan_app::subscriptions;
use mizan_app::tips::{self, NewTip, TipTarget, TipView};
use mizan_core::{Clock, SystemClock};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::{ApiError, Problem};
use crate::routes::identity::{ledger, JsonBody};
use crate::routes::payments::{
    caller, created_response, idempotency_key, idempotent_response, optional_idempotency_key,
};
use crate::routes::security::{any_caller, require_step_up};
use crate::state::AppState;

/// Who reads, now.
fn viewer(person: &mizan_app::identity::Person) -> Viewer {
    Viewer {
        person: Some(person.id),
        now_ns: SystemClock.now_ns(),
    }
}

/// Posts a listing answers.
const POSTS_PAGE: usize = 50;

impl From<SocialError> for ApiError {
    fn from(error: SocialError) -> ApiError {
        let code = error.code();
        let field = error.field();
        let refused = |status, title, error: SocialError| ApiError::Refused {
            status,
            code,
            title,
            field,
            detail: error.to_string(),
        };
        match error {
            SocialError::DisplayNameInvalid
            | SocialError::BioTooLong
            | SocialError::AvatarUrlInvalid
            | SocialError::PostTextInvalid => {
                refused(StatusCode::BAD_REQUEST, "Invalid field", error)
            }
            SocialError::CannotFollowYourself | SocialError::IdempotencyKeyReused => {
                refused(StatusCode::UNPROCESSABLE_ENTITY, "Refused", error)
            }
            SocialError::PersonNotFound | SocialError::PostNotFound => {
                refused(StatusCode::NOT_FOUND, "Not found", error)
            }
            SocialError::Internal(detail) => {
                tracing::error!(%detail, "social use case failed");
                ApiError::Internal
            }
        }
    }
}

/// The person's own session; apps do not act on profiles, follows or posts.
async fn own_person(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<mizan_app::identity::Person, ApiError> {
    let caller = any_caller(state, headers).await?;
    Ok(caller.require_session()?.clone())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ProfileBody {
    pub handle: String,
    pub display_name: String,
    pub bio: String,
    /// An https:// picture the person chose, or null.
    pub avatar_url: Option<String>,
    /// Counted up to 1,000.
    pub followers: usize,
    pub following: usize,
}

impl From<ProfileView> for ProfileBody {
    fn from(view: ProfileView) -> ProfileBody {
        ProfileBody {
            handle: view.handle,
            display_name: view.display_name,
            bio: view.bio,
            avatar_url: view.avatar_url,
            followers: view.followers,
            following: view.following,
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileEditRequest {
    /// 1–50 characters.
    pub display_name: String,
    /// Up to 280 characters.
    #[serde(default)]
    pub bio: String,
    /// An https:// URL of at most 500 characters; `""` removes the avatar, and
    /// leaving it out keeps the current one.
    pub avatar_url: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PostBody {
    pub id: String,
    /// The author's handle.
    pub author: String,
    /// Empty when `locked`.
    pub text: String,
    /// Only the author's subscribers (of `minimum_tier_id` or a dearer tier) read it.
    pub subscribers_only: bool,
    pub minimum_tier_id: Option<String>,
    pub minimum_tier_name: Option<String>,
    /// The caller may not read it: subscribe to the author to unlock it.
    pub locked: bool,
    pub created_at: String,
    /// How many tips it received (up to 1,000); amounts are private.
    pub tips: usize,
}

impl From<PostView> for PostBody {
    fn from(view: PostView) -> PostBody {
        PostBody {
            id: view.id,
            author: view.author,
            text: view.text,
            subscribers_only: view.subscribers_only,
            minimum_tier_id: view.minimum_tier.as_ref().map(|tier| tier.id.clone()),
            minimum_tier_name: view.minimum_tier.map(|tier| tier.name),
            locked: view.locked,
            created_at: view.created_at,
            tips: view.tips,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PostListBody {
    /// Newest first.
    pub items: Vec<PostBody>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PostCreateRequest {
    /// 1–1,000 characters.
    pub text: String,
    /// Only the author's subscribers in good standing read the text.
    #[serde(default)]
    pub subscribers_only: bool,
    /// With `subscribers_only`: one of the author's tiers; subscribers of cheaper
    /// tiers see it locked.
    pub minimum_tier_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TipCreateRequest {
    /// Tip a post (its author gets it); or give `to` instead.
    pub post_id: Option<String>,
    /// Tip a creator's profile, by handle.
    pub to: Option<String>,
    /// Major units, e.g. "3.00".
    pub amount: String,
    pub currency: String,
    #[serde(default)]
    pub note: String,
    /// Whether the note may be shown publicly (default: private to the creator).
    #[serde(default)]
    pub public_note: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TipBody {
    pub id: String,
    pub from: String,
    pub to: String,
    pub post_id: Option<String>,
    pub amount: String,
    /// The platform's cut, paid by the creator from the tip.
    pub fee: String,
    pub currency: String,
    pub note: String,
    pub public_note: bool,
    pub transfer_id: String,
    pub created_at: String,
}

impl From<TipView> for TipBody {
    fn from(view: TipView) -> TipBody {
        TipBody {
            id: view.id,
            from: view.from,
            to: view.to,
            post_id: view.post_id,
            amount: view.amount,
            fee: view.fee,
            currency: view.currency,
            note: view.note,
            public_note: view.public_note,
            transfer_id: view.transfer_id,
            created_at: view.created_at,
        }
    }
}

/// A person's public profile.
#[utoipa::path(
    get,
    path = "/v1/people/{handle}",
    tag = "social",
    security(("bearer" = [])),
    params(("handle" = String, Path, description = "The person's handle")),
    responses(
        (status = 200, description = "The profile", body = ProfileBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`person_not_found`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_profile(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(handle): Path<String>,
) -> Result<Json<ProfileBody>, ApiError> {
    caller(&state, &headers, Scope::WalletRead).await?;
    let view = social::profile(&state.reader(), &handle).await?;
    Ok(Json(view.into()))
}

/// Sets the caller's display name, bio and (optionally) avatar.
#[utoipa::path(
    post,
    path = "/v1/me/profile",
    tag = "social",
    security(("bearer" = [])),
    request_body = ProfileEditRequest,
    responses(
        (status = 200, description = "The profile", body = ProfileBody),
        (status = 400, description = "`invalid_body`, `invalid_display_name`, `bio_too_long` or `invalid_avatar_url`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn edit_profile(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<ProfileEditRequest>,
) -> Result<Json<ProfileBody>, ApiError> {
    let person = own_person(&state, &headers).await?;
    let mut edit = ProfileEdit::parse(&request.display_name, &request.bio)?;
    if let Some(url) = &request.avatar_url {
        edit = edit.with_avatar_url(url)?;
    }
    let ledger = ledger(&state)?;
    let view = social::update_profile(&ledger, &state.reader(), &person, edit).await?;
    Ok(Json(view.into()))
}

async fn set_follow(
    state: &AppState,
    headers: &HeaderMap,
    handle: &str,
    active: bool,
) -> Result<Json<ProfileBody>, ApiError> {
    let person = own_person(state, headers).await?;
    let ledger = ledger(state)?;
    let now_ns = SystemClock.now_ns();
    let view =
        social::set_follow(&ledger, &state.reader(), &person, handle, active, now_ns).await?;
    Ok(Json(view.into()))
}

/// Follows a person (again: no change).
#[utoipa::path(
    post,
    path = "/v1/people/{handle}/follow",
    tag = "social",
    security(("bearer" = [])),
    params(("handle" = String, Path, description = "Who to follow")),
    responses(
        (status = 200, description = "The followed person's profile", body = ProfileBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`person_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`cannot_follow_yourself`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn follow(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(handle): Path<String>,
) -> Result<Json<ProfileBody>, ApiError> {
    set_follow(&state, &headers, &handle, true).await
}

/// Stops following a person (not following: no change).
#[utoipa::path(
    delete,
    path = "/v1/people/{handle}/follow",
    tag = "social",
    security(("bearer" = [])),
    params(("handle" = String, Path, description = "Who to unfollow")),
    responses(
        (status = 200, description = "The person's profile", body = ProfileBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`person_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`cannot_follow_yourself`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn unfollow(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(handle): Path<String>,
) -> Result<Json<ProfileBody>, ApiError> {
    set_follow(&state, &headers, &handle, false).await
}

/// Publishes a post.
#[utoipa::path(
    post,
    path = "/v1/posts",
    tag = "social",
    security(("bearer" = [])),
    request_body = PostCreateRequest,
    responses(
        (status = 201, description = "The post; a retry under the same `Idempotency-Key` answers it again with `Idempotent-Replayed: true`", body = PostBody),
        (status = 400, description = "`invalid_body`, `invalid_post_text` or `idempotency_key_invalid`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`session_required`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`idempotency_key_reused`: the key was used for another request", body = Problem, content_type = "application/problem+json")
    ),
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional; a retry under it never publishes a second post"))
)]
pub async fn create_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<PostCreateRequest>,
) -> Result<Response, ApiError> {
    let person = own_person(&state, &headers).await?;
    let text = PostText::parse(&request.text)?;
    let audience = match (request.subscribers_only, request.minimum_tier_id) {
        (false, None) => Audience::Everyone,
        (false, Some(_)) => {
            return Err(ApiError::InvalidField {
                code: "invalid_minimum_tier",
                field: "minimum_tier_id",
                detail: "a minimum tier needs `subscribers_only: true`".to_owned(),
            })
        }
        (true, None) => Audience::Subscribers { minimum_tier: None },
        (true, Some(id)) => {
            let tier = subscriptions::tier(&state.reader(), &id).await?;
            if tier.creator != person.handle.as_str() {
                return Err(PaymentError::TierNotFound.into());
            }
            Audience::Subscribers {
                minimum_tier: Some(MinimumTier {
                    id: tier.id,
                    name: tier.name,
                    price_minor: tier.price_minor,
                }),
            }
        }
    };
    let creation = optional_idempotency_key(&headers)?.map(|key| {
        Creation::new(
            &format!("person:{}:posts", person.id),
            &key,
            &social::post_canonical(&text, &audience),
            SystemClock.now_ns(),
        )
    });
    let ledger = ledger(&state)?;
    let created = social::create_post(
        &ledger,
        &state.reader(),
        &person,
        text,
        audience,
        creation.as_ref(),
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    created_response::<PostView, PostBody>(created)
}

/// One post, with its tip count.
#[utoipa::path(
    get,
    path = "/v1/posts/{id}",
    tag = "social",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "The post id (32 hex digits)")),
    responses(
        (status = 200, description = "The post", body = PostBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`post_not_found`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<PostBody>, ApiError> {
    let person = caller(&state, &headers, Scope::WalletRead).await?;
    Ok(Json(
        social::post(&state.reader(), &id, viewer(&person))
            .await?
            .into(),
    ))
}

/// A person's latest posts.
#[utoipa::path(
    get,
    path = "/v1/people/{handle}/posts",
    tag = "social",
    security(("bearer" = [])),
    params(("handle" = String, Path, description = "The author's handle")),
    responses(
        (status = 200, description = "Up to 50 posts, newest first", body = PostListBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`person_not_found`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn posts_of(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(handle): Path<String>,
) -> Result<Json<PostListBody>, ApiError> {
    let person = caller(&state, &headers, Scope::WalletRead).await?;
    let reader = state.reader();
    let author = social::person_of(&reader, &handle).await?;
    let posts = social::posts_by(&reader, author.id, POSTS_PAGE, viewer(&person)).await?;
    Ok(Json(PostListBody {
        items: posts.into_iter().map(PostBody::from).collect(),
    }))
}

/// The latest posts of the people the caller follows, and their own.
#[utoipa::path(
    get,
    path = "/v1/feed",
    tag = "social",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Up to 50 posts, newest first", body = PostListBody),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn feed(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<PostListBody>, ApiError> {
    let person = caller(&state, &headers, Scope::WalletRead).await?;
    let posts = social::feed(&state.reader(), person.id, POSTS_PAGE, SystemClock.now_ns()).await?;
    Ok(Json(PostListBody {
        items: posts.into_iter().map(PostBody::from).collect(),
    }))
}

/// Tips a creator, on a post or on their profile, once per `Idempotency-Key`. With a
/// platform fee configured, the creator's share and the fee move in one linked chain.
#[utoipa::path(
    post,
    path = "/v1/tips",
    tag = "social",
    security(("bearer" = [])),
    params(("Idempotency-Key" = String, Header, description = "Required; a retry with the same key answers the stored result with `Idempotent-Replayed: true`.")),
    request_body = TipCreateRequest,
    responses(
        (status = 201, description = "The tip", body = TipBody),
        (status = 400, description = "`invalid_body`, an amount code, `note_too_long`, `idempotency_key_required` or `invalid_tip_target`", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "`unauthenticated`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`, `step_up_required` (at or above the step-up threshold), or `capability_unavailable` (with `jurisdiction` and `capability`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`recipient_not_found` or `post_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`idempotency_request_in_progress`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`insufficient_funds`, `cannot_pay_yourself`, `idempotency_key_reused`, or `limit_exceeded` (with `limit` and `resets_at`; nothing moved)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn create_tip(
    State(state): State<AppState>,
    headers: HeaderMap,
    JsonBody(request): JsonBody<TipCreateRequest>,
) -> Result<Response, ApiError> {
    let fan_caller = any_caller(&state, &headers).await?;
    let fan = fan_caller.require(Scope::PaymentsWrite)?.clone();
    let key = idempotency_key(&headers)?;
    let target = match (request.post_id, request.to) {
        (Some(post), None) => TipTarget::Post(post),
        (None, Some(handle)) => TipTarget::Profile(handle),
        _ => {
            return Err(ApiError::InvalidField {
                code: "invalid_tip_target",
                field: "post_id",
                detail: "give either `post_id` or `to`".to_owned(),
            })
        }
    };
    let tip = NewTip {
        target,
        amount: payments::parse_amount(&request.amount, &request.currency)?,
        note: Note::parse(&request.note)?,
        public_note: request.public_note,
    };
    require_step_up(&state, &fan_caller, tip.amount.minor_units()).await?;
    let ledger = ledger(&state)?;
    let answer = tips::tip(
        &ledger,
        &state.reader(),
        &state.config().limits,
        &fan,
        tip,
        key,
        state.config().tip_fee_bps,
        SystemClock.now_ns(),
    )
    .await?;
    drop(ledger);
    let body = TipBody::from(answer.body.clone());
    idempotent_response(answer.status, answer.replayed, body)
}
