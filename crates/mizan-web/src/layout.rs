//! The page shell every page shares, form fields that show their error next to
//! them, and the security headers of every page response.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::i18n::{self, Lang, T};
use crate::visitor::{Visitor, CSRF_FIELD};

/// No inline script or style anywhere: everything comes from `/assets`.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// Adds the page security headers to every web response (pages, fragments, events).
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = [
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
        (
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ),
    ];
    for (name, value) in set {
        headers.insert(name, value);
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A whole page: the shell around `content`, with the CSRF cookie when it is new.
pub fn page(visitor: &Visitor, status: StatusCode, title: &str, content: Markup) -> Response {
    let lang = visitor.lang;
    let signed_in = visitor.caller.is_some();
    let markup = html! {
        (DOCTYPE)
        html lang=(lang.code()) dir=(lang.dir()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light";
                title { (title) " · " (T::AppName.get(lang)) }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body data-signed-in=(signed_in) {
                a.skip href="#main" { (T::SkipToContent.get(lang)) }
                header.top {
                    a.brand href="/" { (T::AppName.get(lang)) }
                    @if let Some(caller) = &visitor.caller {
                        nav aria-label=(T::MainMenu.get(lang)) {
                            ul {
                                li { a href="/" { (T::Home.get(lang)) } }
                                li { a href="/feed" { (T::Feed.get(lang)) } }
                                li { a href="/messages" { (T::Messages.get(lang)) } }
                                li {
                                    a href="/notifications" {
                                        (T::Notifications.get(lang))
                                        " " span.badge #unread-count hidden[visitor.unread == 0]
                                            data-count=(visitor.unread) aria-label=(T::UnreadLabel.get(lang)) {
                                            (i18n::numerals(lang, &visitor.unread.min(99).to_string()))
                                        }
                                    }
                                }
                                li { a href="/subscriptions" { (T::Subscriptions.get(lang)) } }
                                li { a href="/send" { (T::Send.get(lang)) } }
                                li { a href="/request" { (T::RequestMoney.get(lang)) } }
                                li { a href="/requests" { (T::Requests.get(lang)) } }
                                li { a href="/split" { (T::Split.get(lang)) } }
                                li { a href="/add-money" { (T::AddMoney.get(lang)) } }
                                li { a href="/cash-out" { (T::CashOut.get(lang)) } }
                                li { a href="/activity" { (T::Activity.get(lang)) } }
                                li { a href="/apps" { (T::Apps.get(lang)) } }
                                li { a href="/settings" { (T::Settings.get(lang)) } }
                            }
                        }
                        form.logout method="post" action="/logout" {
                            (csrf_field(visitor))
                            a.me href={ "/people/" (caller.person.handle.as_str()) } { bdi { "@" (caller.person.handle.as_str()) } }
                            button.link type="submit" { (T::LogOut.get(lang)) }
                        }
                    }
                }
                main #main tabindex="-1" {
                    // Isolated, so "@handle" titles read right in right-to-left pages.
                    h1 { bdi { (title) } }
                    (content)
                }
                div #toast role="status" aria-live="polite" {}
                footer {
                    span { (T::Language.get(lang)) ": " }
                    a href="/lang/en" lang="en" hreflang="en" aria-current=[(lang == Lang::En).then_some("true")] { "English" }
                    " · "
                    a href="/lang/ar" lang="ar" hreflang="ar" aria-current=[(lang == Lang::Ar).then_some("true")] { "العربية" }
                }
            }
        }
    };
    let mut response = (status, markup).into_response();
    if let Some(cookie) = visitor.csrf_cookie() {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// A page that only says one thing (errors: not found, expired form, …).
pub fn message_page(lang: Lang, status: StatusCode, text: T) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang=(lang.code()) dir=(lang.dir()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (T::AppName.get(lang)) }
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                main #main {
                    h1 { (T::AppName.get(lang)) }
                    p.error role="alert" { (text.get(lang)) }
                    p { a href="/" { (T::Home.get(lang)) } }
                }
            }
        }
    };
    (status, markup).into_response()
}

/// 303 See Other: after a POST, the browser GETs the result (no resubmission on reload).
pub fn redirect(target: &str) -> Response {
    let location = HeaderValue::from_str(target).unwrap_or(HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response()
}

/// Percent-encodes `text` for a query value.
pub fn query_escape(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Only local paths are places to come back to (no open redirects).
pub fn local_path(next: &str) -> &str {
    let local = next.starts_with('/') && !next.starts_with("//") && !next.contains('\\');
    if local {
        next
    } else {
        "/"
    }
}

pub fn csrf_field(visitor: &Visitor) -> Markup {
    html! { input type="hidden" name=(CSRF_FIELD) value=(visitor.csrf); }
}

/// The random idempotency key a money form carries (a double submit replays it).
pub fn key_field(key: &str) -> Markup {
    html! { input type="hidden" name="key" value=(key); }
}

/// What a form field is: its name, label, input type and extra attributes.
pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub kind: &'a str,
    pub value: &'a str,
    pub hint: Option<&'a str>,
    pub error: Option<&'a str>,
    pub autocomplete: &'a str,
    pub inputmode: Option<&'a str>,
    pub required: bool,
    pub list: Option<&'a str>,
    /// The input's id when `field-<name>` is not unique on the page (a form per row).
    pub id: Option<&'a str>,
}

impl<'a> Field<'a> {
    pub fn new(name: &'a str, label: &'a str) -> Field<'a> {
        Field {
            name,
            label,
            kind: "text",
            value: "",
            hint: None,
            error: None,
            autocomplete: "off",
            inputmode: None,
            required: true,
            list: None,
            id: None,
        }
    }

    pub fn kind(self, kind: &'a str) -> Self {
        Field { kind, ..self }
    }
    pub fn value(self, value: &'a str) -> Self {
        Field { value, ..self }
    }
    pub fn hint(self, hint: &'a str) -> Self {
        Field {
            hint: Some(hint),
            ..self
        }
    }
    pub fn error(self, error: Option<&'a str>) -> Self {
        Field { error, ..self }
    }
    pub fn autocomplete(self, autocomplete: &'a str) -> Self {
        Field {
            autocomplete,
            ..self
        }
    }
    pub fn inputmode(self, inputmode: &'a str) -> Self {
        Field {
            inputmode: Some(inputmode),
            ..self
        }
    }
    pub fn optional(self) -> Self {
        Field {
            required: false,
            ..self
        }
    }
    pub fn list(self, list: &'a str) -> Self {
        Field {
            list: Some(list),
            ..self
        }
    }
    pub fn id(self, id: &'a str) -> Self {
        Field {
            id: Some(id),
            ..self
        }
    }

    /// The label, the input, its hint and its error, tied together for screen readers.
    pub fn render(&self) -> Markup {
        let id = self
            .id
            .map_or_else(|| format!("field-{}", self.name), str::to_owned);
        let hint_id = format!("{id}-hint");
        let error_id = format!("{id}-error");
        let mut described = Vec::new();
        if self.hint.is_some() {
            described.push(hint_id.as_str());
        }
        if self.error.is_some() {
            described.push(error_id.as_str());
        }
        let described = (!described.is_empty()).then(|| described.join(" "));
        html! {
            div.field.invalid[self.error.is_some()] {
                label for=(id) { (self.label) }
                @if let Some(hint) = self.hint {
                    p.hint id=(hint_id) { (hint) }
                }
                input id=(id) name=(self.name) type=(self.kind) value=(self.value)
                    autocomplete=(self.autocomplete)
                    inputmode=[self.inputmode]
                    list=[self.list]
                    required[self.required]
                    aria-invalid=[self.error.map(|_| "true")]
                    aria-describedby=[described];
                @if let Some(error) = self.error {
                    p.error id=(error_id) { (error) }
                }
            }
        }
    }
}

/// A submit button that the script disables (and relabels) while its form is sent.
pub fn submit(label: &str, busy_label: &str) -> Markup {
    html! { button.primary type="submit" data-busy=(busy_label) { (label) } }
}

/// A one-line notice at the top of a page (after a redirect: "Money added.").
pub fn notice(text: &str) -> Markup {
    html! { p.notice role="status" { (text) } }
}

/// A form-level error (not tied to one field).
pub fn form_error(text: &str) -> Markup {
    html! { p.error.form-error role="alert" { (text) } }
}

/// Markup that is already safe HTML.
pub fn raw(text: &'static str) -> PreEscaped<&'static str> {
    PreEscaped(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed_after_log_in() {
        assert_eq!(local_path("/send?to=bilal"), "/send?to=bilal");
        assert_eq!(local_path("https://evil.test/"), "/");
        assert_eq!(local_path("//evil.test/"), "/");
        assert_eq!(local_path("/\\evil.test"), "/");
        assert_eq!(local_path(""), "/");
    }

    #[test]
    fn fields_tie_their_error_to_the_input() {
        let markup = Field::new("amount", "Amount")
            .error(Some("Enter an amount like 12.50."))
            .render()
            .into_string();
        assert!(markup.contains(r#"aria-invalid="true""#), "{markup}");
        assert!(
            markup.contains(r#"aria-describedby="field-amount-error""#),
            "{markup}"
        );
        assert!(markup.contains(r#"<label for="field-amount">"#), "{markup}");
    }

    #[test]
    fn a_field_given_an_id_ties_its_label_hint_and_error_to_that_id() {
        let markup = Field::new("code", "Code")
            .id("field-code-r1")
            .hint("Only for large amounts.")
            .error(Some("Wrong code."))
            .optional()
            .render()
            .into_string();
        assert!(
            markup.contains(r#"<label for="field-code-r1">"#),
            "{markup}"
        );
        assert!(markup.contains(r#"id="field-code-r1""#), "{markup}");
        assert!(markup.contains(r#"name="code""#), "{markup}");
        assert!(
            markup.contains(r#"aria-describedby="field-code-r1-hint field-code-r1-error""#),
            "{markup}"
        );
        assert!(!markup.contains("required"), "{markup}");
        assert!(!markup.contains(r#"id="field-code""#), "{markup}");
    }

    #[test]
    fn values_are_escaped() {
        let markup = Field::new("note", "Note")
            .value("<script>alert(1)</script>")
            .render()
            .into_string();
        assert!(!markup.contains("<script>"), "{markup}");
    }
}
