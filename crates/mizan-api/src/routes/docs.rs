//! `GET /v1/openapi.json` (the OpenAPI 3.1 document generated from the handlers) and
//! `GET /v1/docs` (a self-contained HTML page listing its operations; no network fetches
//! beyond the spec itself).

use axum::response::Html;
use axum::Json;
use utoipa::OpenApi;

use crate::error::Problem;
use crate::routes::health::Status;
use crate::routes::{
    apps, cases, checkout, compliance, identity, messages, payments, requests, security, social,
    subscriptions,
};

/// Declares the `bearer` security scheme the identity operations name.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The body of a problem answer: `application/problem+json` with the `Problem` schema.
fn problem_content() -> utoipa::openapi::Content {
    utoipa::openapi::ContentBuilder::new()
        .schema(Some(utoipa::openapi::Ref::from_schema_name("Problem")))
        .build()
}

/// Adds the 429 every rate-limited operation can answer (all but the probes), so the
/// document does not have to repeat it on each handler.
struct RateLimited;

impl utoipa::Modify for RateLimited {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::header::HeaderBuilder;
        use utoipa::openapi::ResponseBuilder;
        let response = ResponseBuilder::new()
            .description("`rate_limited`: too many requests from this IP, person or app")
            .header(
                "Retry-After",
                HeaderBuilder::new()
                    .description(Some("Seconds until a request would pass"))
                    .build(),
            )
            .content("application/problem+json", problem_content())
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            if matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics") {
                continue;
            }
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                operation
                    .responses
                    .responses
                    .insert("429".to_owned(), response.clone().into());
            }
        }
    }
}

/// Documents the optional `Idempotency-Key` the middleware honours on the action
/// routes (`crate::idempotency`), and the answers it adds, on each of them.
struct ActionKeys;

impl utoipa::Modify for ActionKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        use utoipa::openapi::{Required, ResponseBuilder};
        let parameter = ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Optional; 1–255 visible ASCII characters. A retry under the same key \
                 answers the first answer with `Idempotent-Replayed: true` for 24 hours \
                 and does not act again.",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(255))
                    .pattern(Some("^[!-~]+$")),
            ))
            .build();
        let added = [
            ("400", "`idempotency_key_invalid`"),
            (
                "409",
                "`idempotency_request_in_progress`: a request under the key is still running",
            ),
            (
                "422",
                "`idempotency_key_reused`: the key was used with another request",
            ),
        ];
        for (path, secret) in crate::idempotency::ACTION_ROUTES {
            let Some(operation) = openapi
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.post.as_mut())
            else {
                continue;
            };
            operation
                .parameters
                .get_or_insert_with(Vec::new)
                .push(parameter.clone());
            let secret_note = secret.then_some((
                "409",
                "`idempotency_secret_not_replayable`: the key already answered a secret, shown once",
            ));
            for (status, text) in added.into_iter().chain(secret_note) {
                let responses = &mut operation.responses.responses;
                let description = match responses.get(status) {
                    Some(utoipa::openapi::RefOr::T(existing)) => {
                        format!("{}; or {text}", existing.description)
                    }
                    _ => text.to_owned(),
                };
                let response = ResponseBuilder::new()
                    .description(description)
                    .content("application/problem+json", problem_content())
                    .build();
                responses.insert(status.to_owned(), response.into());
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Mizan API",
        description = "The HTTP API of Mizan. Errors are application/problem+json with a stable `code`."
    ),
    paths(
        crate::routes::health::healthz,
        crate::routes::health::readyz,
        crate::routes::metrics::metrics,
        crate::routes::identity::signup,
        crate::routes::identity::login,
        crate::routes::identity::me,
        crate::routes::identity::logout,
        crate::routes::security::list_sessions,
        crate::routes::security::revoke_session,
        crate::routes::security::change_password,
        crate::routes::security::begin_totp,
        crate::routes::security::confirm_totp,
        crate::routes::security::step_up,
        crate::routes::security::export,
        crate::routes::payments::fund,
        crate::routes::payments::cash_out,
        crate::routes::payments::answer_challenge,
        crate::routes::vault::list_cards,
        crate::routes::vault::delete_card,
        crate::routes::vault::erase,
        crate::routes::payments::create_payment,
        crate::routes::payments::get_payment,
        crate::routes::requests::receipt,
        crate::routes::requests::create_request,
        crate::routes::requests::get_request,
        crate::routes::requests::list_requests,
        crate::routes::requests::pay_request,
        crate::routes::requests::decline_request,
        crate::routes::requests::cancel_request,
        crate::routes::requests::create_split,
        crate::routes::requests::activity,
        crate::routes::apps::create_app,
        crate::routes::apps::list_apps,
        crate::routes::apps::create_link_request,
        crate::routes::apps::create_app_token,
        crate::routes::apps::my_link_requests,
        crate::routes::apps::approve_link_request,
        crate::routes::apps::decline_link_request,
        crate::routes::apps::my_apps,
        crate::routes::apps::revoke_app,
        crate::routes::apps::create_endpoint,
        crate::routes::apps::list_endpoints,
        crate::routes::apps::list_deliveries,
        crate::routes::apps::replay_delivery,
        crate::routes::social::get_profile,
        crate::routes::social::edit_profile,
        crate::routes::social::follow,
        crate::routes::social::unfollow,
        crate::routes::social::create_post,
        crate::routes::social::get_post,
        crate::routes::social::posts_of,
        crate::routes::social::feed,
        crate::routes::social::create_tip,
        crate::routes::messages::send_message,
        crate::routes::messages::threads,
        crate::routes::messages::thread,
        crate::routes::messages::get_dm_settings,
        crate::routes::messages::set_dm_settings,
        crate::routes::messages::priority_inbox,
        crate::routes::messages::get_paid_dm,
        crate::routes::messages::accept_paid_dm,
        crate::routes::messages::decline_paid_dm,
        crate::routes::checkout::create_checkout,
        crate::routes::checkout::get_checkout,
        crate::routes::checkout::pay_checkout,
        crate::routes::checkout::list_orders,
        crate::routes::subscriptions::my_tiers,
        crate::routes::subscriptions::create_tier,
        crate::routes::subscriptions::retire_tier,
        crate::routes::subscriptions::tiers_of,
        crate::routes::subscriptions::subscribe,
        crate::routes::subscriptions::my_subscriptions,
        crate::routes::subscriptions::get_subscription,
        crate::routes::subscriptions::cancel,
        crate::routes::subscriptions::my_subscribers,
        crate::routes::compliance::verify_identity,
        crate::routes::compliance::verify_document,
        crate::routes::compliance::my_limits,
        crate::routes::compliance::list_licences,
        crate::routes::compliance::put_licence,
        crate::routes::notifications::list_notifications,
        crate::routes::notifications::mark_seen,
        crate::routes::cases::list_cases,
        crate::routes::cases::open_case,
        crate::routes::cases::get_case,
        crate::routes::cases::assign_case,
        crate::routes::cases::note_case,
        crate::routes::cases::decide_case,
        crate::routes::cases::reload_sanctions,
        crate::routes::cases::sar_draft,
        crate::routes::cases::ctr_drafts,
        crate::routes::cases::monitoring_scan,
        openapi_json,
        docs_page
    ),
    components(schemas(
        Status,
        Problem,
        identity::SignupRequest,
        identity::LoginRequest,
        identity::PersonBody,
        identity::Wallet,
        identity::SessionBody,
        payments::FundingRequest,
        payments::FundingBody,
        payments::CashoutRequest,
        payments::ChallengeAnswer,
        crate::routes::vault::CardBody,
        crate::routes::vault::CardsBody,
        crate::routes::vault::ErasureBody,
        payments::CashoutBody,
        payments::PaymentCreateRequest,
        payments::PaymentBody,
        requests::RequestCreateRequest,
        requests::RequestBody,
        requests::RequestListBody,
        requests::SplitCreateRequest,
        requests::SplitBody,
        requests::ActivityItemBody,
        requests::ActivityBody,
        requests::ReceiptBody,
        security::SessionItem,
        security::PasswordChange,
        security::TotpEnrolmentBody,
        security::TotpCode,
        apps::AppCreateRequest,
        apps::AppBody,
        apps::LinkRequestCreate,
        apps::LinkRequestBody,
        apps::AppTokenCreate,
        apps::AppTokenBody,
        apps::LinkBody,
        apps::EndpointCreate,
        apps::EndpointBody,
        apps::DeliveryBody,
        apps::DeliveriesPage,
        social::ProfileBody,
        social::ProfileEditRequest,
        social::PostBody,
        social::PostListBody,
        social::PostCreateRequest,
        social::TipCreateRequest,
        social::TipBody,
        messages::MessageCreateRequest,
        messages::MessageBody,
        messages::PaidDmBody,
        messages::SentBody,
        messages::ThreadItem,
        messages::ThreadListBody,
        messages::MessageListBody,
        messages::PaidDmListBody,
        messages::DmSettingsBody,
        messages::DmSettingsRequest,
        checkout::CheckoutCreateRequest,
        checkout::CheckoutBody,
        checkout::CheckoutPayRequest,
        checkout::OrderBody,
        checkout::OrderListBody,
        subscriptions::TierCreateRequest,
        subscriptions::TierBody,
        subscriptions::TierListBody,
        subscriptions::SubscriptionCreateRequest,
        subscriptions::SubscriptionBody,
        subscriptions::SubscriptionListBody,
        compliance::VerificationAddress,
        cases::CaseNoteBody,
        cases::CaseBody,
        cases::CaseListBody,
        cases::ManualCaseRequest,
        cases::CaseNoteRequest,
        cases::CaseDecisionRequest,
        cases::ReloadBody,
        cases::ScanBody,
        compliance::VerificationRequest,
        compliance::DocumentVerificationRequest,
        compliance::VerificationBody,
        compliance::LimitBody,
        compliance::LimitsBody,
        compliance::LicenceBody,
        compliance::LicenceRow,
        compliance::LicencesBody,
        crate::error::ProblemExtras,
        crate::routes::notifications::NotificationBody,
        crate::routes::notifications::NotificationsBody,
        crate::routes::notifications::SeenRequest,
        crate::routes::notifications::SeenBody
    )),
    modifiers(&BearerAuth, &RateLimited, &ActionKeys)
)]
pub struct ApiDoc;

/// The OpenAPI 3.1 document of this server.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "docs",
    responses((status = 200, description = "OpenAPI 3.1 document", content_type = "application/json"))
)]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}

/// A minimal HTML page that renders the OpenAPI document.
#[utoipa::path(
    get,
    path = "/v1/docs",
    tag = "docs",
    responses((status = 200, description = "HTML documentation", body = String, content_type = "text/html"))
)]
pub async fn docs_page() -> Html<&'static str> {
    Html(DOCS_HTML)
}

const DOCS_HTML: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Mizan API</title>
<style>
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; }
.op { border: 1px solid #ccc; border-radius: 4px; margin: 0.5rem 0; padding: 0.5rem 1rem; }
.method { font-weight: bold; text-transform: uppercase; display: inline-block; width: 4rem; }
code { background: #f4f4f4; padding: 0 0.2rem; }
</style>
</head>
<body>
<h1 id="title">Mizan API</h1>
<p id="description"></p>
<p>Machine-readable: <a href="/v1/openapi.json"><code>/v1/openapi.json</code></a></p>
<div id="operations">Loading…</div>
<script>
function text(tag, content, className) {
  const node = document.createElement(tag);
  node.textContent = content;
  if (className) node.className = className;
  return node;
}
fetch("/v1/openapi.json").then(r => r.json()).then(spec => {
  document.getElementById("title").textContent = spec.info.title + " " + spec.info.version;
  document.getElementById("description").textContent = spec.info.description || "";
  const list = document.getElementById("operations");
  list.textContent = "";
  for (const [path, item] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const box = document.createElement("div");
      box.className = "op";
      const head = document.createElement("div");
      head.appendChild(text("span", method, "method"));
      head.appendChild(text("code", path));
      box.appendChild(head);
      if (op.summary) box.appendChild(text("p", op.summary));
      if (op.description) box.appendChild(text("p", op.description));
      const responses = document.createElement("ul");
      for (const [status, response] of Object.entries(op.responses || {})) {
        responses.appendChild(text("li", status + ": " + (response.description || "")));
      }
      box.appendChild(responses);
      list.appendChild(box);
    }
  }
}).catch(error => {
  document.getElementById("operations").textContent = "Could not load the spec: " + error;
});
</script>
</body>
</html>
"#;
