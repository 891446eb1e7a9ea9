//! The social layer money features build on: profiles (display name, bio), follows
//! and posts. Small but real: a person can post, follow and be followed, and read a
//! feed. It reaches money only through the payment use cases (`tips`); nothing here
//! touches the ledger's accounts.
//!
//! Storage is documents only: `profiles` by person, `follows` by `follower:followee`
//! (with the reverse `followers` row written in the same atomic submission), `posts`
//! by id with a newest-first per-author index. Documents are never deleted, so an
//! unfollow rewrites both rows as inactive.

use serde::{Deserialize, Serialize};

use crate::creation::{self, Created, Creation};
use crate::identity::{self, Handle, Person, PersonId, SharedReader};
use crate::payments::PaymentError;
use crate::time::rfc3339_from_ns;

pub const COLLECTION_PROFILES: &str = "profiles";
pub const COLLECTION_FOLLOWS: &str = "follows";
pub const COLLECTION_FOLLOWERS: &str = "followers";
pub const COLLECTION_POSTS: &str = "posts";
pub const COLLECTION_POSTS_BY_AUTHOR: &str = "posts_by_author";
pub const TOPIC_POST_CREATED: &str = "post.created";
pub const TOPIC_FOLLOWED: &str = "person.followed";

pub const DISPLAY_NAME_CHARS_MAX: usize = 50;
pub const BIO_CHARS_MAX: usize = 280;
/// Longest avatar URL.
pub const AVATAR_URL_CHARS_MAX: usize = 500;
pub const POST_CHARS_MAX: usize = 1_000;
/// Most people a follower/following count reads; beyond it the count says "at least".
pub const FOLLOW_COUNT_MAX: usize = 1_000;
/// Most accounts a feed merges posts from.
pub const FEED_AUTHORS_MAX: usize = 200;
/// Most posts one listing returns.
pub const POSTS_LISTED_MAX: usize = 100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SocialError {
    #[error("a display name is 1 to 50 characters, without control characters")]
    DisplayNameInvalid,
    #[error("a bio is at most 280 characters")]
    BioTooLong,
    #[error("an avatar is an https:// URL of at most 500 characters, without spaces or quotes")]
    AvatarUrlInvalid,
    #[error("a post is 1 to 1,000 characters")]
    PostTextInvalid,
    #[error("no person has that handle")]
    PersonNotFound,
    #[error("you cannot follow yourself")]
    CannotFollowYourself,
    #[error("no such post")]
    PostNotFound,
    #[error("this Idempotency-Key was already used with a different request")]
    IdempotencyKeyReused,
    /// A bug or a store failure; the detail is logged, never returned.
    #[error("internal error: {0}")]
    Internal(String),
}

impl SocialError {
    /// The stable code; never change one once published.
    pub fn code(&self) -> &'static str {
        match self {
            SocialError::DisplayNameInvalid => "invalid_display_name",
            SocialError::BioTooLong => "bio_too_long",
            SocialError::AvatarUrlInvalid => "invalid_avatar_url",
            SocialError::PostTextInvalid => "invalid_post_text",
            SocialError::PersonNotFound => "person_not_found",
            SocialError::CannotFollowYourself => "cannot_follow_yourself",
            SocialError::PostNotFound => "post_not_found",
            SocialError::IdempotencyKeyReused => "idempotency_key_reused",
            SocialError::Internal(_) => "internal_error",
        }
    }

    /// The request field the error is about, if one.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            SocialError::DisplayNameInvalid => Some("display_name"),
            SocialError::BioTooLong => Some("bio"),
            SocialError::AvatarUrlInvalid => Some("avatar_url"),
            SocialError::PostTextInvalid => Some("text"),
            SocialError::CannotFollowYourself => Some("handle"),
            _ => None,
        }
    }
}

fn internal(context: &str, error: impl std::fmt::Display) -> SocialError {
    SocialError::Internal(format!("{context}: {error}"))
}

impl From<identity::IdentityError> for SocialError {
    fn from(error: identity::IdentityError) -> SocialError {
        internal("identity", error)
    }
}

impl From<crate::creation::CreationError> for SocialError {
    fn from(error: crate::creation::CreationError) -> SocialError {
        match error {
            crate::creation::CreationError::KeyReused => SocialError::IdempotencyKeyReused,
            // A post's answer holds no secret: it is always stored.
            other => internal("a post's idempotency claim", other),
        }
    }
}

impl From<PaymentError> for SocialError {
    fn from(error: PaymentError) -> SocialError {
        internal("payments", error)
    }
}

/// Text a person typed: trimmed, within `max` characters, no control characters
/// (new lines allowed where `multiline`).
fn clean_text(text: &str, max: usize, multiline: bool) -> Option<String> {
    let text = text.trim();
    let allowed = text
        .chars()
        .all(|c| !c.is_control() || (multiline && c == '\n'));
    (allowed && text.chars().count() <= max).then(|| text.to_owned())
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct ProfileDocument {
    display_name: String,
    bio: String,
    #[serde(default)]
    avatar_url: Option<String>,
}

/// A person's public profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileView {
    pub handle: String,
    /// The handle when the person has not set one.
    pub display_name: String,
    pub bio: String,
    /// An https:// picture the person chose, if any.
    pub avatar_url: Option<String>,
    /// Capped at [`FOLLOW_COUNT_MAX`].
    pub followers: usize,
    pub following: usize,
}

/// A profile edit, parsed.
#[derive(Debug, Clone)]
pub struct ProfileEdit {
    display_name: String,
    bio: String,
    /// `None` keeps the stored avatar; `Some(None)` removes it.
    avatar_url: Option<Option<String>>,
}

impl ProfileEdit {
    pub fn parse(display_name: &str, bio: &str) -> Result<ProfileEdit, SocialError> {
        let display_name = clean_text(display_name, DISPLAY_NAME_CHARS_MAX, false)
            .filter(|name| !name.is_empty())
            .ok_or(SocialError::DisplayNameInvalid)?;
        let bio = clean_text(bio, BIO_CHARS_MAX, true).ok_or(SocialError::BioTooLong)?;
        Ok(ProfileEdit {
            display_name,
            bio,
            avatar_url: None,
        })
    }

    /// Sets the avatar too: an https:// URL (at most [`AVATAR_URL_CHARS_MAX`]
    /// characters, visible ASCII without quotes or angle brackets, with a host), or
    /// empty to remove it.
    pub fn with_avatar_url(self, url: &str) -> Result<ProfileEdit, SocialError> {
        let url = url.trim();
        if url.is_empty() {
            return Ok(ProfileEdit {
                avatar_url: Some(None),
                ..self
            });
        }
        let host = url
            .strip_prefix("https://")
            .and_then(|rest| rest.split(['/', '?', '#']).next())
            .unwrap_or_default();
        let host_ok = !host.is_empty()
            && !host.contains('@')
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'));
        let chars_ok = url.len() <= AVATAR_URL_CHARS_MAX
            && url
                .bytes()
                .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'<' | b'>' | b'\\'));
        if !(host_ok && chars_ok) {
            return Err(SocialError::AvatarUrlInvalid);
        }
        Ok(ProfileEdit {
            avatar_url: Some(Some(url.to_owned())),
            ..self
        })
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, SocialError> {
    serde_json::to_vec(value).map_err(|error| internal("encoding a document", error))
}

async fn read<T: for<'de> Deserialize<'de>>(
    reader: &SharedReader,
    collection: &'static str,
    key: String,
) -> Result<Option<T>, SocialError> {
    match identity::read_document(reader, collection, key).await? {
        None => Ok(None),
        Some(body) => serde_json::from_slice(&body)
            .map(Some)
            .map_err(|error| internal(collection, error)),
    }
}

async fn prefix(
    reader: &SharedReader,
    collection: &'static str,
    prefix: String,
    limit: usize,
) -> Result<Vec<(String, Vec<u8>)>, SocialError> {
    crate::documents::with_prefix(reader, collection, prefix, None, limit)
        .await
        .map_err(|error| internal(collection, error))
}

/// The person behind `handle`, or `PersonNotFound`.
pub async fn person_of(reader: &SharedReader, handle: &str) -> Result<Person, SocialError> {
    let handle = Handle::parse(handle.strip_prefix('@').unwrap_or(handle))
        .map_err(|_| SocialError::PersonNotFound)?;
    let id = identity::person_by_handle(reader, &handle)
        .await?
        .ok_or(SocialError::PersonNotFound)?;
    Ok(identity::person_by_id(reader, id).await?)
}

async fn active_count(
    reader: &SharedReader,
    collection: &'static str,
    person: PersonId,
) -> Result<usize, SocialError> {
    let rows = prefix(reader, collection, format!("{person}:"), FOLLOW_COUNT_MAX).await?;
    Ok(rows
        .iter()
        .filter(|(_, body)| {
            serde_json::from_slice::<FollowDocument>(body).is_ok_and(|follow| follow.active)
        })
        .count())
}

/// The profile of the person with `handle`.
pub async fn profile(reader: &SharedReader, handle: &str) -> Result<ProfileView, SocialError> {
    let person = person_of(reader, handle).await?;
    let stored: ProfileDocument = read(reader, COLLECTION_PROFILES, person.id.to_string())
        .await?
        .unwrap_or_default();
    let display_name = if stored.display_name.is_empty() {
        person.handle.as_str().to_owned()
    } else {
        stored.display_name
    };
    Ok(ProfileView {
        handle: person.handle.as_str().to_owned(),
        display_name,
        bio: stored.bio,
        avatar_url: stored.avatar_url,
        followers: active_count(reader, COLLECTION_FOLLOWERS, person.id).await?,
        following: active_count(reader, COLLECTION_FOLLOWS, person.id).await?,
    })
}

/// Sets the person's display name and bio.
pub async fn update_profile(
    ledger: &mizan_ledger::Ledger,
    reader: &SharedReader,
    person: &Person,
    edit: ProfileEdit,
) -> Result<ProfileView, SocialError> {
    let avatar_url = match edit.avatar_url {
        Some(change) => change,
        None => read::<ProfileDocument>(reader, COLLECTION_PROFILES, person.id.to_string())
            .await?
            .and_then(|stored| stored.avatar_url),
    };
    let document = ProfileDocument {
        display_name: edit.display_name,
        bio: edit.bio,
        avatar_url,
    };
    let rows = vec![mizan_ledger::BusinessRow::Document {
        collection: COLLECTION_PROFILES.to_owned(),
        key: person.id.to_string(),
        body: to_json(&document)?,
    }];
    crate::documents::submit_rows(ledger, rows)
        .await
        .map_err(|error| internal("saving a profile", error))?;
    profile(reader, person.handle.as_str()).await
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FollowDocument {
    active: bool,
    since_ns: u64,
}

/// Whether `follower` follows `followee` now.
pub async fn follows(
    reader: &SharedReader,
    follower: PersonId,
    followee: PersonId,
) -> Result<bool, SocialError> {
    let stored: Option<FollowDocument> =
        read(reader, COLLECTION_FOLLOWS, format!("{follower}:{followee}")).await?;
    Ok(stored.is_some_and(|follow| follow.active))
}

/// Follows (or, with `active` false, unfollows) the person with `handle`. Doing it
/// twice is the same as once.
pub async fn set_follow(
    ledger: &mizan_ledger::Ledger,
    reader: &SharedReader,
    follower: &Person,
    handle: &str,
    active: bool,
    now_ns: u64,
) -> Result<ProfileView, SocialError> {
    let followee = person_of(reader, handle).await?;
    if followee.id == follower.id {
        return Err(SocialError::CannotFollowYourself);
    }
    let body = to_json(&FollowDocument {
        active,
        since_ns: now_ns,
    })?;
    let mut rows = vec![
        mizan_ledger::BusinessRow::Document {
            collection: COLLECTION_FOLLOWS.to_owned(),
            key: format!("{}:{}", follower.id, followee.id),
            body: body.clone(),
        },
        mizan_ledger::BusinessRow::Document {
            collection: COLLECTION_FOLLOWERS.to_owned(),
            key: format!("{}:{}", followee.id, follower.id),
            body,
        },
    ];
    if active && !follows(reader, follower.id, followee.id).await? {
        let event = serde_json::json!({
            "person": followee.id.to_string(),
            "follower": follower.handle.as_str(),
        });
        rows.push(crate::outbox::event_row(
            TOPIC_FOLLOWED,
            &to_json(&event)?,
            now_ns,
        ));
    }
    crate::documents::submit_rows(ledger, rows)
        .await
        .map_err(|error| internal("saving a follow", error))?;
    profile(reader, followee.handle.as_str()).await
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PostDocument {
    pub(crate) author: String,
    pub(crate) author_handle: String,
    pub(crate) text: String,
    pub(crate) subscribers_only: bool,
    /// The cheapest tier whose subscribers read it (any tier when `None`).
    #[serde(default)]
    pub(crate) minimum_tier: Option<MinimumTier>,
    pub(crate) created_at_ns: u64,
}

/// A subscriber-only post's minimum tier, as it was when the post was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinimumTier {
    pub id: String,
    pub name: String,
    pub price_minor: i64,
}

/// Who may read a post's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    Everyone,
    /// The author's subscribers in good standing (active or in grace), of
    /// `minimum_tier`'s price or above when given.
    Subscribers {
        minimum_tier: Option<MinimumTier>,
    },
}

/// A post as people see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostView {
    pub id: String,
    pub author: String,
    pub text: String,
    pub subscribers_only: bool,
    /// A subscriber-only post's minimum tier (any tier when `None`).
    pub minimum_tier: Option<MinimumTier>,
    /// The viewer may not read it: `text` is empty, a subscribe prompt goes instead.
    pub locked: bool,
    pub created_at: String,
    /// The same instant in nanoseconds, for ordering posts made within a second.
    pub created_at_ns: u64,
    /// How many tips it received (capped at `tips::TIP_COUNT_MAX`); amounts stay private.
    pub tips: usize,
}

/// A post's text, parsed.
#[derive(Debug, Clone)]
pub struct PostText(String);

impl PostText {
    pub fn parse(text: &str) -> Result<PostText, SocialError> {
        clean_text(text, POST_CHARS_MAX, true)
            .filter(|text| !text.is_empty())
            .map(PostText)
            .ok_or(SocialError::PostTextInvalid)
    }
}

fn post_index_key(author: PersonId, created_at_ns: u64, id: &str) -> String {
    format!("{author}:{:020}:{id}", u64::MAX - created_at_ns)
}

/// Publishes a post. Posts are never edited; the id is random.
/// The canonical request of a post, for [`Creation::new`].
pub fn post_canonical(text: &PostText, audience: &Audience) -> String {
    let audience = match audience {
        Audience::Everyone => "everyone".to_owned(),
        Audience::Subscribers { minimum_tier: None } => "subscribers".to_owned(),
        Audience::Subscribers {
            minimum_tier: Some(tier),
        } => format!("subscribers:{}", tier.id),
    };
    format!("post|{audience}|{}", text.0)
}

/// Publishes a post. Under an `Idempotency-Key` (`creation`), a retry answers the
/// first post again instead of publishing a second.
pub async fn create_post(
    ledger: &mizan_ledger::Ledger,
    reader: &SharedReader,
    author: &Person,
    text: PostText,
    audience: Audience,
    creation: Option<&Creation>,
    now_ns: u64,
) -> Result<Created<PostView>, SocialError> {
    if let Some(replay) = creation::replay_used(creation, reader).await? {
        return Ok(Created::Replayed(replay));
    }
    let id = format!("{:032x}", rand::random::<u128>());
    let (subscribers_only, minimum_tier) = match audience {
        Audience::Everyone => (false, None),
        Audience::Subscribers { minimum_tier } => (true, minimum_tier),
    };
    let document = PostDocument {
        author: author.id.to_string(),
        author_handle: author.handle.as_str().to_owned(),
        text: text.0,
        subscribers_only,
        minimum_tier,
        created_at_ns: now_ns,
    };
    let body = to_json(&document)?;
    let mut rows = vec![
        mizan_ledger::BusinessRow::Create {
            collection: COLLECTION_POSTS.to_owned(),
            key: id.clone(),
            body: body.clone(),
        },
        mizan_ledger::BusinessRow::Document {
            collection: COLLECTION_POSTS_BY_AUTHOR.to_owned(),
            key: post_index_key(author.id, now_ns, &id),
            body: id.clone().into_bytes(),
        },
        crate::outbox::event_row(TOPIC_POST_CREATED, &body, now_ns),
    ];
    let view = view_of(id, document, 0, false);
    if let Some(creation) = creation {
        rows.push(creation.answer_row(&view.id, &view)?);
    }
    let Some(collection) = crate::documents::submit_rows(ledger, rows)
        .await
        .map_err(|error| internal("saving a post", error))?
    else {
        return Ok(Created::New(view));
    };
    match creation::replay_conflict(creation, &collection, reader).await? {
        Some(replay) => Ok(Created::Replayed(replay)),
        None => Err(internal("post id taken", collection)),
    }
}

fn view_of(id: String, document: PostDocument, tips: usize, locked: bool) -> PostView {
    PostView {
        id,
        author: document.author_handle,
        text: if locked { String::new() } else { document.text },
        subscribers_only: document.subscribers_only,
        minimum_tier: document.minimum_tier,
        locked,
        created_at: rfc3339_from_ns(document.created_at_ns),
        created_at_ns: document.created_at_ns,
        tips,
    }
}

pub(crate) async fn post_document(
    reader: &SharedReader,
    id: &str,
) -> Result<PostDocument, SocialError> {
    let valid = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
    if !valid {
        return Err(SocialError::PostNotFound);
    }
    read(reader, COLLECTION_POSTS, id.to_ascii_lowercase())
        .await?
        .ok_or(SocialError::PostNotFound)
}

/// One post, with its tip count.
/// Who reads posts, and when: the text of a subscriber-only post shows to its author
/// and to subscribers in good standing at `now_ns`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Viewer {
    pub person: Option<PersonId>,
    pub now_ns: u64,
}

async fn may_read(
    reader: &SharedReader,
    viewer: Viewer,
    document: &PostDocument,
) -> Result<bool, SocialError> {
    if !document.subscribers_only {
        return Ok(true);
    }
    let Some(person) = viewer.person else {
        return Ok(false);
    };
    let author = PersonId::parse(&document.author)?;
    if author == person {
        return Ok(true);
    }
    let price =
        crate::subscriptions::access_price_minor(reader, person, author, viewer.now_ns).await?;
    let minimum = document
        .minimum_tier
        .as_ref()
        .map_or(0, |tier| tier.price_minor);
    Ok(price.is_some_and(|price| price >= minimum))
}

/// A post as `viewer` sees it (locked when they may not read it).
pub async fn post(
    reader: &SharedReader,
    id: &str,
    viewer: Viewer,
) -> Result<PostView, SocialError> {
    let document = post_document(reader, id).await?;
    let tips = crate::tips::tip_count(reader, id).await?;
    let locked = !may_read(reader, viewer, &document).await?;
    Ok(view_of(id.to_ascii_lowercase(), document, tips, locked))
}

/// The latest posts of one person, newest first.
pub async fn posts_by(
    reader: &SharedReader,
    author: PersonId,
    limit: usize,
    viewer: Viewer,
) -> Result<Vec<PostView>, SocialError> {
    let limit = limit.clamp(1, POSTS_LISTED_MAX);
    let rows = prefix(
        reader,
        COLLECTION_POSTS_BY_AUTHOR,
        format!("{author}:"),
        limit,
    )
    .await?;
    let mut posts = Vec::with_capacity(rows.len());
    for (_, body) in rows {
        let id = String::from_utf8(body).map_err(|error| internal("post index", error))?;
        posts.push(post(reader, &id, viewer).await?);
    }
    Ok(posts)
}

/// The latest posts of the people `person` follows and their own, newest first.
pub async fn feed(
    reader: &SharedReader,
    person: PersonId,
    limit: usize,
    now_ns: u64,
) -> Result<Vec<PostView>, SocialError> {
    let viewer = Viewer {
        person: Some(person),
        now_ns,
    };
    let limit = limit.clamp(1, POSTS_LISTED_MAX);
    let rows = prefix(
        reader,
        COLLECTION_FOLLOWS,
        format!("{person}:"),
        FEED_AUTHORS_MAX,
    )
    .await?;
    let mut authors = vec![person];
    for (key, body) in rows {
        let active =
            serde_json::from_slice::<FollowDocument>(&body).is_ok_and(|follow| follow.active);
        let followee = key.split_once(':').map(|(_, followee)| followee);
        if let (true, Some(followee)) = (active, followee) {
            authors.push(PersonId::parse(followee)?);
        }
    }
    let mut posts = Vec::new();
    for author in authors {
        posts.extend(posts_by(reader, author, limit, viewer).await?);
    }
    posts.sort_by(|a, b| b.created_at_ns.cmp(&a.created_at_ns).then(b.id.cmp(&a.id)));
    posts.truncate(limit);
    Ok(posts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_are_trimmed_bounded_and_free_of_control_characters() {
        let edit = ProfileEdit::parse("  Amina K. ", "Painter.\nCoffee.")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(edit.display_name, "Amina K.");
        assert_eq!(edit.bio, "Painter.\nCoffee.");
        assert_eq!(
            ProfileEdit::parse("", "").err(),
            Some(SocialError::DisplayNameInvalid)
        );
        assert_eq!(
            ProfileEdit::parse("a\u{7}b", "").err(),
            Some(SocialError::DisplayNameInvalid)
        );
        assert_eq!(
            ProfileEdit::parse("a\nb", "").err(),
            Some(SocialError::DisplayNameInvalid)
        );
        assert_eq!(
            ProfileEdit::parse("a", &"x".repeat(281)).err(),
            Some(SocialError::BioTooLong)
        );
        let with = |url: &str| {
            ProfileEdit::parse("a", "")
                .and_then(|edit| edit.with_avatar_url(url))
                .map(|edit| edit.avatar_url)
        };
        assert_eq!(
            with("https://cdn.example.com/a.png?s=64"),
            Ok(Some(Some("https://cdn.example.com/a.png?s=64".to_owned())))
        );
        assert_eq!(with(""), Ok(Some(None)));
        for bad in [
            "http://example.com/a.png",
            "javascript:alert(1)",
            "https://",
            "https:///a.png",
            "https://user@example.com/a.png",
            "https://example.com/a b.png",
            "https://example.com/\"onerror=\"x",
        ] {
            assert_eq!(with(bad), Err(SocialError::AvatarUrlInvalid), "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(AVATAR_URL_CHARS_MAX));
        assert_eq!(with(&long), Err(SocialError::AvatarUrlInvalid));
        assert!(PostText::parse("  ").is_err());
        assert!(PostText::parse(&"é".repeat(1_000)).is_ok());
        assert!(PostText::parse(&"é".repeat(1_001)).is_err());
    }
}
