//! Who is asking: the person behind the session cookie (if any), their language, and
//! the CSRF token. Forms are posted back with that token (double-submit: the token is
//! in an HttpOnly, SameSite=Strict cookie and in the form), and a POST whose browser
//! says it came from another site is refused outright.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method};
use mizan_api::rate_limit::RateKey;
use mizan_api::AppState;
use mizan_app::apps::{self, Caller};
use mizan_app::identity::Person;
use mizan_app::notifications;
use mizan_core::{Clock, SystemClock};
use sha2::{Digest, Sha256};

use crate::i18n::Lang;
use crate::WebError;

pub const SESSION_COOKIE: &str = mizan_api::routes::identity::SESSION_COOKIE;
pub const CSRF_COOKIE: &str = "mizan_csrf";
pub const LANG_COOKIE: &str = "mizan_lang";
/// The hidden field every form carries its CSRF token in.
pub const CSRF_FIELD: &str = "csrf";
/// Bytes of randomness in a CSRF token or an idempotency key made for a form.
const TOKEN_BYTES: usize = 32;
/// Most bytes of a form body read into fields (the API's body limit applies first).
pub const FORM_FIELDS_MAX: usize = 64;

/// The visitor of a page: their language, their session (if signed in), and their
/// CSRF token (a new one when they had none; the page response sets it).
#[derive(Debug, Clone)]
pub struct Visitor {
    pub lang: Lang,
    pub caller: Option<Caller>,
    /// The session token itself, for log-out.
    pub session_token: Option<String>,
    pub csrf: String,
    /// True when [`Visitor::csrf`] is new and must be set as a cookie.
    pub csrf_is_new: bool,
    /// The request's path and query, to come back to after logging in.
    pub path: String,
    /// The signed-in person's unread notifications (read for pages only, not forms).
    pub unread: usize,
}

impl Visitor {
    /// The signed-in person, or a redirect to the log-in page.
    pub fn person(&self) -> Result<&Person, WebError> {
        match &self.caller {
            Some(caller) => Ok(&caller.person),
            None => Err(WebError::LogInFirst {
                back_to: self.path.clone(),
            }),
        }
    }

    pub fn caller(&self) -> Result<&Caller, WebError> {
        self.caller.as_ref().ok_or_else(|| WebError::LogInFirst {
            back_to: self.path.clone(),
        })
    }

    /// Checks a posted form's CSRF token against the cookie's.
    pub fn check_form(&self, form: &Form) -> Result<(), WebError> {
        let posted = form.get(CSRF_FIELD);
        let matches = !self.csrf_is_new
            && posted.len() == self.csrf.len()
            && constant_time_eq(posted.as_bytes(), self.csrf.as_bytes());
        if matches {
            Ok(())
        } else {
            Err(WebError::FormExpired(self.lang))
        }
    }

    /// The CSRF cookie to set with the response, when the token is new.
    pub fn csrf_cookie(&self) -> Option<HeaderValue> {
        if !self.csrf_is_new {
            return None;
        }
        HeaderValue::from_str(&format!(
            "{CSRF_COOKIE}={}; HttpOnly; Secure; SameSite=Strict; Path=/",
            self.csrf
        ))
        .ok()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A fresh random token: CSRF tokens and the idempotency keys forms carry.
pub fn random_token() -> String {
    let bytes: [u8; TOKEN_BYTES] = rand::random();
    hex::encode(bytes)
}

/// The value of cookie `name`, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebError> {
        let headers = &parts.headers;
        let lang = cookie(headers, LANG_COOKIE)
            .and_then(Lang::parse)
            .unwrap_or_else(|| {
                headers
                    .get(header::ACCEPT_LANGUAGE)
                    .and_then(|value| value.to_str().ok())
                    .map(Lang::from_accept_language)
                    .unwrap_or_default()
            });
        if parts.method == Method::POST && from_another_site(headers) {
            return Err(WebError::FormExpired(lang));
        }
        let (csrf, csrf_is_new) = match cookie(headers, CSRF_COOKIE) {
            Some(token)
                if token.len() == 2 * TOKEN_BYTES
                    && token.bytes().all(|b| b.is_ascii_hexdigit()) =>
            {
                (token.to_owned(), false)
            }
            _ => (random_token(), true),
        };
        let session_token = cookie(headers, SESSION_COOKIE)
            .filter(|token| !token.is_empty())
            .map(str::to_owned);
        let now_ns = SystemClock.now_ns();
        let caller = match &session_token {
            None => None,
            Some(token) => match apps::authenticate(&state.reader(), token, now_ns).await {
                // Only the person's own session signs into the web app, never an app token.
                Ok(caller) if caller.app_id.is_none() => Some(caller),
                Ok(_) | Err(apps::AppError::Unauthenticated) => None,
                Err(error) => return Err(WebError::Internal(lang, error.to_string())),
            },
        };
        if let Some(caller) = &caller {
            let key = RateKey::Person(caller.person.id.get());
            if let Err(retry_after_s) = state.rate_limits().person.check(key, now_ns) {
                return Err(WebError::RateLimited(lang, retry_after_s));
            }
        }
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |pq| pq.as_str().to_owned());
        let unread = match &caller {
            Some(caller) if parts.method == Method::GET => {
                notifications::unread_count(&state.reader(), caller.person.id)
                    .await
                    .map_err(|error| WebError::Internal(lang, error.to_string()))?
            }
            _ => 0,
        };
        Ok(Visitor {
            lang,
            caller,
            session_token,
            csrf,
            csrf_is_new,
            path,
            unread,
        })
    }
}

/// True when the browser says the request came from another site (`Sec-Fetch-Site`),
/// or its `Origin` names a host other than the one it was sent to.
fn from_another_site(headers: &HeaderMap) -> bool {
    let fetch_site = headers
        .get("sec-fetch-site")
        .and_then(|value| value.to_str().ok());
    if matches!(fetch_site, Some("cross-site" | "same-site")) {
        return true;
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (origin, host) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => {
            let origin_host = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"))
                .unwrap_or(origin);
            origin_host != host
        }
        _ => false,
    }
}

/// A posted `application/x-www-form-urlencoded` body, as fields. Never rejects: a
/// missing field reads as empty text, and the page says what is wrong with it.
#[derive(Debug, Default, Clone)]
pub struct Form {
    fields: Vec<(String, String)>,
}

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        let fields = form_urlencoded::parse(body)
            .take(FORM_FIELDS_MAX)
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        Form { fields }
    }

    /// The first value of `name`, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map_or("", |(_, value)| value.trim())
    }

    /// The value of `name` exactly as posted (passwords keep their spaces).
    pub fn raw(&self, name: &str) -> &str {
        self.fields
            .iter()
            .find(|(field, _)| field == name)
            .map_or("", |(_, value)| value.as_str())
    }
}

/// The idempotency key a money form carries: the page's random key, scoped by form
/// so the same page key can never collide across kinds. A missing or odd key makes a
/// fresh one (the submission then cannot be replayed, but still happens once).
pub fn form_key(form: &Form, kind: &str) -> String {
    let key = form.get("key");
    let valid = key.len() == 2 * TOKEN_BYTES && key.bytes().all(|b| b.is_ascii_hexdigit());
    let key = if valid {
        key.to_owned()
    } else {
        random_token()
    };
    format!("web-{kind}-{key}")
}

/// A short, stable id for a session key, for forms (never the key's secret token).
pub fn session_label(key: &str) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..4])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_decode_and_missing_ones_are_empty() {
        let form = Form::parse(b"to=%40bilal&amount=+12.50+&note=pizza+%F0%9F%8D%95&password=+a+");
        assert_eq!(form.get("to"), "@bilal");
        assert_eq!(form.get("amount"), "12.50");
        assert_eq!(form.get("note"), "pizza 🍕");
        assert_eq!(form.raw("password"), " a ");
        assert_eq!(form.get("missing"), "");
    }

    #[test]
    fn cross_site_posts_are_recognised() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(!from_another_site(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(!from_another_site(&headers));
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.test"),
        );
        assert!(from_another_site(&headers));
        headers.remove(header::ORIGIN);
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(from_another_site(&headers));
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(!from_another_site(&headers));
    }

    #[test]
    fn form_keys_are_scoped_by_kind_and_odd_keys_replaced() {
        let key = "ab".repeat(32);
        let form = Form::parse(format!("key={key}").as_bytes());
        assert_eq!(form_key(&form, "send"), format!("web-send-{key}"));
        assert_ne!(form_key(&form, "send"), form_key(&form, "request"));
        let odd = Form::parse(b"key=short");
        assert_ne!(form_key(&odd, "send"), form_key(&odd, "send"));
    }

    #[test]
    fn csrf_tokens_must_match_an_existing_cookie() {
        let token = random_token();
        let visitor = Visitor {
            lang: Lang::En,
            caller: None,
            session_token: None,
            csrf: token.clone(),
            csrf_is_new: false,
            path: "/".to_owned(),
            unread: 0,
        };
        let good = Form::parse(format!("csrf={token}").as_bytes());
        assert!(visitor.check_form(&good).is_ok());
        let bad = Form::parse(format!("csrf={}", random_token()).as_bytes());
        assert!(visitor.check_form(&bad).is_err());
        assert!(visitor.check_form(&Form::default()).is_err());
        let fresh = Visitor {
            csrf_is_new: true,
            ..visitor
        };
        assert!(fresh.check_form(&good).is_err());
    }
}
