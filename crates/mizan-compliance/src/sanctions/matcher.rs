//! The screener: every list name and alias indexed at load, then fuzzy-matched
//! against queries. Immutable after [`Screener::new`], so one instance can be shared
//! across threads behind an `Arc` and swapped whole when the list is reloaded.
//!
//! A query is scored against a few candidates, never the whole list:
//! 1. Each query token finds every list token close enough to count (see
//!    [`token_similarity`]) through a symmetric deletion index: at load every list
//!    token is stored under the hashes of itself and of each string it becomes with up
//!    to [`deletion_depth`] bytes deleted; a query token looks up its own such hashes.
//!    Two strings within `k` edits always share a string reachable by at most `k`
//!    deletions from each, so the lookup is complete; each hit is verified exactly.
//! 2. Postings of the matched list tokens give the list names sharing a token; a
//!    name becomes a candidate when at least two query tokens reach it (one for a
//!    one-token query), or one *rare* token does (held by a handful of names).
//! 3. Each candidate is scored from those verified token similarities alone (see
//!    [`Screener::screen`]) and the best score per entry decides. The naive scan
//!    ([`Screener::screen_naive`]) scores every name, computing every similarity
//!    directly: the lookup being complete, it reaches the same score for every name
//!    the index scores, and the names the index skips share fewer than two tokens
//!    with the query or provably score below `review` (the bench and a test check
//!    that decisions agree).

use std::cell::RefCell;

use rustc_hash::FxHashMap;

use super::list::{EntryKind, SanctionsList};
use super::normalize::{self, Side, Token};

/// Queries longer than this are refused: the longest list name is 158 bytes, and
/// the limit bounds the work one query can cause.
pub const QUERY_BYTES_MAX: usize = 512;
/// Tokens of a query beyond this are ignored (a full name rarely has more than 6).
pub const QUERY_TOKENS_MAX: usize = 12;
/// Tokens of a list name beyond this are not indexed; the longest list name has 24.
const NAME_TOKENS_MAX: usize = 32;
/// Matches reported per query, best first.
pub const MATCHES_MAX: usize = 10;
/// Two tokens below this similarity do not match at all (see [`token_similarity`]).
const TOKEN_SIMILARITY_MIN: f32 = 0.7;
/// A token held by at most this many list names is rare enough that one shared rare
/// token makes a candidate on its own.
const RARE_TOKEN_NAMES_MAX: usize = 8;
/// Rounding room when comparing a candidate's score bound with `review`.
const SCORE_BOUND_SLACK: f32 = 1e-3;
/// When a name matches the query on a single token held by more than this many list
/// names (`ali`, `muhammad`, `bank`), the score is scaled by
/// [`COMMON_SINGLE_TOKEN_FACTOR`]: a common given name alone is not evidence.
const COMMON_TOKEN_NAMES_MIN: usize = 10;
const COMMON_SINGLE_TOKEN_FACTOR: f64 = 0.6;
/// ... unless query and list name are that one token, equal, and it has at least this many
/// bytes: `Hizballah` against the entry `HIZBALLAH` is a hit, `Ali` against `ALI` is not.
const WHOLE_SINGLE_NAME_BYTES_MIN: usize = 5;
/// Weight of a given name after the first (a middle name) in a `LAST, First Middle`
/// list name: payment orders often drop middle names, so missing them costs little.
const MIDDLE_NAME_WEIGHT: f32 = 0.35;
/// Weight of legal forms, generic business words and honorifics (`co`, `ltd`,
/// `trading`, `shaykh`).
const LEGAL_FORM_WEIGHT: f32 = 0.3;

/// Score cut-offs; scores run from 0 (nothing in common) to 1 (same tokens).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// At or above: `block`.
    pub block: f64,
    /// At or above (and below `block`): `review`.
    pub review: f64,
}

impl Thresholds {
    /// Tuned on `tests/data/sanctions_labelled.tsv`; see docs/COMPLIANCE.md.
    pub const TUNED: Thresholds = Thresholds {
        block: 0.91,
        review: 0.77,
    };
}

/// Who a name belongs to, which decides the list entries it can match.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Subject {
    /// Any name (`mizan sanctions screen`, a counterparty of unknown kind): every entry.
    #[default]
    Any,
    /// A person's legal name. It is screened against individuals and entities only: a
    /// person is not a vessel or an aircraft, and the list's ship names (`AMINA`,
    /// `HASNA`) are common given names. A name of one word decides at most `review`:
    /// one word alone identifies nobody, so a person is never frozen on it.
    Person,
}

impl Subject {
    fn admits(self, kind: EntryKind) -> bool {
        match self {
            Subject::Any => true,
            Subject::Person => matches!(kind, EntryKind::Individual | EntryKind::Entity),
        }
    }
}

/// What to do with a payment to this name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Clear,
    Review,
    Block,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Clear => "clear",
            Decision::Review => "review",
            Decision::Block => "block",
        }
    }
}

/// One list entry a query matched, through its best-scoring name.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Match {
    pub ent_num: u32,
    /// The matched name or alias as written on the list.
    pub name: String,
    /// 0..1, see [`Thresholds`].
    pub score: f64,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    pub programs: String,
}

/// The outcome of screening one name.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Screening {
    pub decision: Decision,
    /// The best score over all candidates, reported even when it is below `review`.
    pub best_score: f64,
    /// Entries scoring at least `review`, best first, at most [`MATCHES_MAX`].
    pub matches: Vec<Match>,
}

/// Why a query was not screened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScreenError {
    #[error("the name is empty (no letters or digits)")]
    Empty,
    #[error("the name is {bytes} bytes, more than the {QUERY_BYTES_MAX} allowed")]
    TooLong { bytes: usize },
}

impl ScreenError {
    /// Stable code for JSON output.
    pub fn code(&self) -> &'static str {
        match self {
            ScreenError::Empty => "empty_name",
            ScreenError::TooLong { .. } => "name_too_long",
        }
    }
}

#[derive(Debug)]
struct Entry {
    ent_num: u32,
    kind: EntryKind,
    programs: Box<str>,
}

#[derive(Debug)]
struct IndexedName {
    /// Index into `Screener::entries`.
    entry: u32,
    text: Box<str>,
    tokens: Box<[u32]>,
    weights: Box<[f32]>,
    weight_total: f32,
}

/// The immutable screening index over one list.
#[derive(Debug)]
pub struct Screener {
    entries: Vec<Entry>,
    names: Vec<IndexedName>,
    token_ids: FxHashMap<Box<str>, u32>,
    token_texts: Vec<Box<str>>,
    /// Token id → ids of the names holding it (each once).
    postings: Vec<Box<[u32]>>,
    /// Hash of a deletion variant of list tokens → range in `deletion_token_ids`.
    deletion_ranges: FxHashMap<u64, (u32, u32)>,
    /// List token ids grouped by deletion-variant hash.
    deletion_token_ids: Vec<u32>,
    thresholds: Thresholds,
    /// The list's digest ([`SanctionsList::digest`]): which list this index screens.
    list_digest: String,
}

/// A query token with the list tokens it matches and how well.
struct QueryToken {
    text: Box<str>,
    weight: f32,
    matches: Vec<(u32, f32)>,
}

/// Per-thread counters for candidate generation, sized to the largest list seen.
#[derive(Default)]
struct Scratch {
    hits: Vec<u8>,
    rare: Vec<bool>,
    seen: Vec<u32>,
    query_potential: Vec<f32>,
    list_potential: Vec<f32>,
    stamp: u32,
    touched: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Screener {
    /// Indexes every entry name and alias of `list`.
    pub fn new(list: &SanctionsList, thresholds: Thresholds) -> Self {
        assert!(
            0.0 < thresholds.review && thresholds.review <= thresholds.block,
            "thresholds out of order: {thresholds:?}"
        );
        let mut builder = Builder::default();
        let mut entry_index = FxHashMap::default();
        for entry in list.entries() {
            let index = u32::try_from(builder.entries.len()).unwrap_or(u32::MAX);
            entry_index.insert(entry.ent_num, index);
            builder.entries.push(Entry {
                ent_num: entry.ent_num,
                kind: entry.kind,
                programs: entry.programs.clone().into_boxed_str(),
            });
            builder.add_name(index, &entry.name, entry.kind);
        }
        for alias in list.aliases() {
            // SanctionsList::parse has checked that every alias names an entry.
            if let Some(&index) = entry_index.get(&alias.ent_num) {
                let kind = builder.entries[index as usize].kind;
                builder.add_name(index, &alias.name, kind);
            }
        }
        let mut screener = builder.finish(thresholds);
        screener.list_digest = list.digest().to_owned();
        screener
    }

    /// The digest of the list this screener was built from (SHA-256 of its two
    /// files, hex): a server compares it with the last one it screened everyone
    /// against to see that the list changed.
    pub fn list_digest(&self) -> &str {
        &self.list_digest
    }

    pub fn thresholds(&self) -> Thresholds {
        self.thresholds
    }

    /// Names and aliases indexed.
    pub fn name_count(&self) -> usize {
        self.names.len()
    }

    /// Screens one name of any kind through the index ([`Subject::Any`]).
    pub fn screen(&self, query: &str) -> Result<Screening, ScreenError> {
        self.screen_as(query, Subject::Any)
    }

    /// Screens one name of `subject` through the index.
    pub fn screen_as(&self, query: &str, subject: Subject) -> Result<Screening, ScreenError> {
        let tokens = self.query_tokens(query)?;
        let candidates = self.candidates(&tokens);
        Ok(self.rank(
            &tokens,
            candidates.into_iter(),
            Similarities::Verified,
            subject,
        ))
    }

    /// Screens one name by scoring every list name: the baseline the index is
    /// measured against, and a cross-check in tests.
    pub fn screen_naive(&self, query: &str) -> Result<Screening, ScreenError> {
        self.screen_naive_as(query, Subject::Any)
    }

    /// [`Screener::screen_naive`] for `subject`.
    pub fn screen_naive_as(&self, query: &str, subject: Subject) -> Result<Screening, ScreenError> {
        let tokens = self.query_tokens(query)?;
        let all = 0..u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        Ok(self.rank(&tokens, all, Similarities::Computed, subject))
    }

    fn query_tokens(&self, query: &str) -> Result<Vec<QueryToken>, ScreenError> {
        if query.len() > QUERY_BYTES_MAX {
            return Err(ScreenError::TooLong { bytes: query.len() });
        }
        let mut tokens: Vec<QueryToken> = Vec::new();
        for token in normalize::tokens(query, Side::Query)
            .into_iter()
            .take(QUERY_TOKENS_MAX)
        {
            let text = match token.typed {
                Some(typed) if self.token_ids.contains_key(typed.as_str()) => typed,
                _ => token.text,
            };
            let text = self.unglue_article(text);
            let weight = if normalize::is_legal_form(&text) {
                LEGAL_FORM_WEIGHT
            } else {
                1.0
            };
            let matches = self.vocabulary_matches(&text);
            tokens.push(QueryToken {
                text: text.into_boxed_str(),
                weight,
                matches,
            });
        }
        if tokens.is_empty() {
            return Err(ScreenError::Empty);
        }
        Ok(tokens)
    }

    /// `alzawahiri` → `zawahiri` when the list knows the second and not the first:
    /// the article glued on is a spelling, not a different name.
    fn unglue_article(&self, text: String) -> String {
        if text.len() < 6 || self.token_ids.contains_key(text.as_str()) {
            return text;
        }
        for article in ["al", "el"] {
            if let Some(rest) = text.strip_prefix(article) {
                if self.token_ids.contains_key(rest) {
                    return rest.to_string();
                }
            }
        }
        text
    }

    /// List tokens close enough to `text` to count, with their similarity.
    fn vocabulary_matches(&self, text: &str) -> Vec<(u32, f32)> {
        let mut found: Vec<(u32, f32)> = Vec::new();
        if let Some(&id) = self.token_ids.get(text) {
            found.push((id, 1.0));
        }
        let bytes = text.as_bytes();
        let mut reached: Vec<u32> = Vec::new();
        for_each_deletion_hash(bytes, |hash| {
            if let Some(&(start, end)) = self.deletion_ranges.get(&hash) {
                reached.extend_from_slice(&self.deletion_token_ids[start as usize..end as usize]);
            }
        });
        reached.sort_unstable();
        reached.dedup();
        for id in reached {
            if found.first().is_some_and(|(exact, _)| *exact == id) {
                continue;
            }
            let similarity = token_similarity(bytes, self.token_texts[id as usize].as_bytes());
            if similarity >= TOKEN_SIMILARITY_MIN {
                found.push((id, similarity));
            }
        }
        found.sort_by(|left, right| right.1.total_cmp(&left.1).then(left.0.cmp(&right.0)));
        found
    }

    /// Names reached by enough query tokens (see the module docs).
    ///
    /// While counting, each name also collects an upper bound of its score: every query
    /// token's best similarity to one of the name's tokens, weighted, bounds the query
    /// coverage; the same similarities (list weights are at most 1) bound the list
    /// coverage. Names whose bound is below `review` are not scored.
    fn candidates(&self, tokens: &[QueryToken]) -> Vec<u32> {
        let needed_hits: u8 = if tokens.len() >= 2 { 2 } else { 1 };
        let query_weight_total: f32 = tokens.iter().map(|token| token.weight).sum();
        let bound_min = self.thresholds.review as f32 - SCORE_BOUND_SLACK;
        SCRATCH.with(|cell| {
            let mut scratch = cell.borrow_mut();
            let scratch = &mut *scratch;
            if scratch.hits.len() < self.names.len() {
                scratch.hits.resize(self.names.len(), 0);
                scratch.rare.resize(self.names.len(), false);
                scratch.seen.resize(self.names.len(), 0);
                scratch.query_potential.resize(self.names.len(), 0.0);
                scratch.list_potential.resize(self.names.len(), 0.0);
            }
            scratch.touched.clear();
            for token in tokens {
                scratch.stamp = scratch.stamp.wrapping_add(1);
                if scratch.stamp == 0 {
                    scratch.seen.iter_mut().for_each(|seen| *seen = 0);
                    scratch.stamp = 1;
                }
                // `matches` is sorted best first, so a name's first hit is its best.
                for &(id, similarity) in &token.matches {
                    let postings = &self.postings[id as usize];
                    let rare = postings.len() <= RARE_TOKEN_NAMES_MAX;
                    for &name in postings.iter() {
                        let name = name as usize;
                        if scratch.seen[name] == scratch.stamp {
                            continue;
                        }
                        scratch.seen[name] = scratch.stamp;
                        if scratch.hits[name] == 0 {
                            scratch.touched.push(name as u32);
                        }
                        scratch.hits[name] = scratch.hits[name].saturating_add(1);
                        scratch.rare[name] |= rare;
                        scratch.query_potential[name] += token.weight * similarity;
                        scratch.list_potential[name] += similarity;
                    }
                }
            }
            let mut chosen = Vec::new();
            for &name in &scratch.touched {
                let index = name as usize;
                let enough_hits = scratch.hits[index] >= needed_hits || scratch.rare[index];
                let bound = 0.5 * scratch.query_potential[index] / query_weight_total
                    + 0.5
                        * (scratch.list_potential[index] / self.names[index].weight_total).min(1.0);
                if enough_hits && bound >= bound_min {
                    chosen.push(name);
                }
                scratch.hits[index] = 0;
                scratch.rare[index] = false;
                scratch.query_potential[index] = 0.0;
                scratch.list_potential[index] = 0.0;
            }
            chosen
        })
    }

    /// Scores `candidates`, keeps each entry's best name, decides.
    fn rank(
        &self,
        tokens: &[QueryToken],
        candidates: impl Iterator<Item = u32>,
        similarities: Similarities,
        subject: Subject,
    ) -> Screening {
        let mut best_per_entry: FxHashMap<u32, (f64, u32)> = FxHashMap::default();
        let mut pairs = Vec::new();
        for name in candidates {
            let entry = self.names[name as usize].entry;
            if !subject.admits(self.entries[entry as usize].kind) {
                continue;
            }
            let score = self.score(tokens, &self.names[name as usize], similarities, &mut pairs);
            let slot = best_per_entry.entry(entry).or_insert((score, name));
            if score > slot.0 {
                *slot = (score, name);
            }
        }
        let best_score = best_per_entry
            .values()
            .map(|(score, _)| *score)
            .fold(0.0, f64::max);
        let mut ranked: Vec<(f64, u32)> = best_per_entry
            .into_values()
            .filter(|(score, _)| *score >= self.thresholds.review)
            .collect();
        ranked.sort_by(|left, right| {
            right.0.total_cmp(&left.0).then_with(|| {
                let left_entry = self.names[left.1 as usize].entry;
                let right_entry = self.names[right.1 as usize].entry;
                self.entries[left_entry as usize]
                    .ent_num
                    .cmp(&self.entries[right_entry as usize].ent_num)
            })
        });
        ranked.truncate(MATCHES_MAX);
        let matches = ranked
            .into_iter()
            .map(|(score, name)| {
                let indexed = &self.names[name as usize];
                let entry = &self.entries[indexed.entry as usize];
                Match {
                    ent_num: entry.ent_num,
                    name: indexed.text.to_string(),
                    score: (score * 1000.0).round() / 1000.0,
                    kind: entry.kind,
                    programs: entry.programs.to_string(),
                }
            })
            .collect();
        let one_word_person = subject == Subject::Person && tokens.len() == 1;
        let decision = if best_score >= self.thresholds.block && !one_word_person {
            Decision::Block
        } else if best_score >= self.thresholds.review {
            Decision::Review
        } else {
            Decision::Clear
        };
        Screening {
            decision,
            best_score: (best_score * 1000.0).round() / 1000.0,
            matches,
        }
    }

    /// Score of one list name for the query, 0..1.
    ///
    /// Query tokens are paired with list tokens greedily, best similarity first, each
    /// token used once (order-free). Two coverages are averaged: the share of the
    /// query's weight that found a partner, and the share of the list name's weight
    /// that did. Extra query tokens lower the first, dropped list tokens the second;
    /// middle names and legal forms weigh little, so dropping them costs little.
    fn score(
        &self,
        tokens: &[QueryToken],
        name: &IndexedName,
        similarities: Similarities,
        pairs: &mut Vec<(f32, u8, u8)>,
    ) -> f64 {
        pairs.clear();
        for (query_index, token) in tokens.iter().enumerate() {
            for (list_index, &list_token) in name.tokens.iter().enumerate() {
                let similarity = match similarities {
                    Similarities::Verified => token
                        .matches
                        .iter()
                        .find(|(id, _)| *id == list_token)
                        .map_or(0.0, |(_, similarity)| *similarity),
                    Similarities::Computed => {
                        let list_text = self.token_texts[list_token as usize].as_bytes();
                        let similarity = token_similarity(token.text.as_bytes(), list_text);
                        if similarity >= TOKEN_SIMILARITY_MIN {
                            similarity
                        } else {
                            0.0
                        }
                    }
                };
                if similarity > 0.0 {
                    // Both indexes are below 256: query and name token counts are capped.
                    pairs.push((similarity, query_index as u8, list_index as u8));
                }
            }
        }
        pairs.sort_by(|left, right| right.0.total_cmp(&left.0));
        let mut query_used = [false; QUERY_TOKENS_MAX];
        let mut list_used = [false; NAME_TOKENS_MAX];
        let mut query_covered = 0.0f32;
        let mut list_covered = 0.0f32;
        let mut matched = 0usize;
        let mut last_list_token = 0u32;
        for &(similarity, query_index, list_index) in pairs.iter() {
            let (query_index, list_index) = (query_index as usize, list_index as usize);
            if query_used[query_index] || list_used[list_index] {
                continue;
            }
            query_used[query_index] = true;
            list_used[list_index] = true;
            query_covered += tokens[query_index].weight * similarity;
            list_covered += name.weights[list_index] * similarity;
            matched += 1;
            last_list_token = name.tokens[list_index];
        }
        if matched == 0 {
            return 0.0;
        }
        let query_total: f32 = tokens.iter().map(|token| token.weight).sum();
        let coverage = 0.5 * f64::from(query_covered / query_total)
            + 0.5 * f64::from(list_covered / name.weight_total);
        // A one-token list name matched whole by a one-token query is exempt when the
        // token is long enough to be a name of its own (`HIZBALLAH`), not a given name.
        let whole_single_name = tokens.len() == 1
            && name.tokens.len() == 1
            && query_covered >= tokens[0].weight
            && self.token_texts[last_list_token as usize].len() >= WHOLE_SINGLE_NAME_BYTES_MIN;
        let single_common = matched == 1
            && !whole_single_name
            && self.postings[last_list_token as usize].len() > COMMON_TOKEN_NAMES_MIN;
        let score = if single_common {
            coverage * COMMON_SINGLE_TOKEN_FACTOR
        } else {
            coverage
        };
        score.clamp(0.0, 1.0)
    }
}

/// Builds the index; see [`Screener::new`].
#[derive(Default)]
struct Builder {
    entries: Vec<Entry>,
    names: Vec<IndexedName>,
    token_ids: FxHashMap<Box<str>, u32>,
    token_texts: Vec<Box<str>>,
    postings: Vec<Vec<u32>>,
}

impl Builder {
    fn add_name(&mut self, entry: u32, text: &str, kind: EntryKind) {
        let tokens: Vec<Token> = normalize::tokens(text, Side::List)
            .into_iter()
            .take(NAME_TOKENS_MAX)
            .collect();
        if tokens.is_empty() {
            return;
        }
        let name_id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        let mut ids = Vec::with_capacity(tokens.len());
        let mut weights = Vec::with_capacity(tokens.len());
        let mut seen_given_name = false;
        for token in &tokens {
            let weight = if normalize::is_legal_form(&token.text) {
                LEGAL_FORM_WEIGHT
            } else if token.given_name && kind == EntryKind::Individual {
                let first = !seen_given_name;
                seen_given_name = true;
                if first {
                    1.0
                } else {
                    MIDDLE_NAME_WEIGHT
                }
            } else {
                1.0
            };
            let id = self.token_id(&token.text);
            let postings = &mut self.postings[id as usize];
            if postings.last() != Some(&name_id) {
                postings.push(name_id);
            }
            ids.push(id);
            weights.push(weight);
        }
        let weight_total = weights.iter().sum();
        self.names.push(IndexedName {
            entry,
            text: text.into(),
            tokens: ids.into_boxed_slice(),
            weights: weights.into_boxed_slice(),
            weight_total,
        });
    }

    fn token_id(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.token_ids.get(text) {
            return id;
        }
        let id = u32::try_from(self.token_texts.len()).unwrap_or(u32::MAX);
        self.token_ids.insert(text.into(), id);
        self.token_texts.push(text.into());
        self.postings.push(Vec::new());
        id
    }

    fn finish(self, thresholds: Thresholds) -> Screener {
        let mut variants: Vec<(u64, u32)> = Vec::new();
        for (id, text) in self.token_texts.iter().enumerate() {
            let id = u32::try_from(id).unwrap_or(u32::MAX);
            for_each_deletion_hash(text.as_bytes(), |hash| variants.push((hash, id)));
        }
        variants.sort_unstable();
        variants.dedup();
        let mut deletion_ranges: FxHashMap<u64, (u32, u32)> = FxHashMap::default();
        let mut deletion_token_ids = Vec::with_capacity(variants.len());
        for group in variants.chunk_by(|left, right| left.0 == right.0) {
            let start = u32::try_from(deletion_token_ids.len()).unwrap_or(u32::MAX);
            deletion_token_ids.extend(group.iter().map(|(_, id)| *id));
            let end = u32::try_from(deletion_token_ids.len()).unwrap_or(u32::MAX);
            deletion_ranges.insert(group[0].0, (start, end));
        }
        let screener = Screener {
            entries: self.entries,
            names: self.names,
            token_ids: self.token_ids,
            token_texts: self.token_texts,
            postings: self
                .postings
                .into_iter()
                .map(Vec::into_boxed_slice)
                .collect(),
            deletion_ranges,
            deletion_token_ids,
            thresholds,
            list_digest: String::new(),
        };
        screener.assert_invariants();
        screener
    }
}

impl Screener {
    /// The index is internally consistent: a broken one would silently miss names.
    fn assert_invariants(&self) {
        assert!(
            u32::try_from(self.names.len()).is_ok()
                && u32::try_from(self.deletion_token_ids.len()).is_ok(),
            "too many names to index"
        );
        assert_eq!(self.token_texts.len(), self.postings.len());
        assert_eq!(self.token_texts.len(), self.token_ids.len());
        for (name_id, name) in self.names.iter().enumerate() {
            assert!((name.entry as usize) < self.entries.len());
            assert_eq!(name.tokens.len(), name.weights.len());
            assert!(name.weight_total > 0.0);
            for &token in name.tokens.iter() {
                assert!(self.postings[token as usize].contains(&(name_id as u32)));
            }
        }
    }
}

/// How the scorer gets token similarities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Similarities {
    /// From the query tokens' verified index matches (complete, see the module docs).
    Verified,
    /// Computed for every pair: the naive scan.
    Computed,
}

/// Bytes a token may lose in the deletion index: enough to meet every token within
/// the edits [`token_similarity`] allows. One edit needs a longer token of 4+ bytes;
/// two need one of 8+, and then a partner under 8 bytes is shorter by one or two,
/// which leaves it at most one deletion to make — so only 8+ byte tokens go to depth 2.
fn deletion_depth(length: usize) -> usize {
    match length {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// Calls `visit` with the hash of `token` and of every string it becomes with up to
/// [`deletion_depth`] bytes deleted (equal variants may repeat). List and query tokens
/// go through the same function, so a shared hash means a shared variant (or, rarely,
/// a 64-bit collision, which verification discards).
fn for_each_deletion_hash(token: &[u8], mut visit: impl FnMut(u64)) {
    const NONE: usize = usize::MAX;
    let depth = deletion_depth(token.len());
    visit(variant_hash(token, NONE, NONE));
    if depth >= 1 {
        for first in 0..token.len() {
            visit(variant_hash(token, first, NONE));
            if depth >= 2 {
                for second in first + 1..token.len() {
                    visit(variant_hash(token, first, second));
                }
            }
        }
    }
}

/// FNV-1a over `token` without the bytes at `skip_first` and `skip_second`.
fn variant_hash(token: &[u8], skip_first: usize, skip_second: usize) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for (index, &byte) in token.iter().enumerate() {
        if index != skip_first && index != skip_second {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// Similarity of two tokens, 0..1: `1 - d / longer length`, where `d` is the optimal
/// string alignment distance (insertions, deletions, substitutions, adjacent
/// transpositions). Edits allowed grow with length — none under 4 bytes, one up to 7,
/// two from 8 — and a pair needing more is 0: `mary`/`mark` is 0.75, `amit`/`jasmit`
/// is 0, `noriega`/`noreiga` is 0.86.
fn token_similarity(left: &[u8], right: &[u8]) -> f32 {
    if left == right {
        return 1.0;
    }
    let longer = left.len().max(right.len());
    let edits_max = match longer {
        0..=3 => return 0.0,
        4..=7 => 1,
        _ => 2,
    };
    if left.len().abs_diff(right.len()) > edits_max {
        return 0.0;
    }
    let distance = if edits_max == 1 {
        if one_edit(left, right) {
            1
        } else {
            return 0.0;
        }
    } else {
        match bounded_distance(left, right, edits_max) {
            Some(distance) => distance,
            None => return 0.0,
        }
    };
    1.0 - distance as f32 / longer as f32
}

/// Whether two different byte strings are one edit (OSA) apart, in linear time.
fn one_edit(left: &[u8], right: &[u8]) -> bool {
    let prefix = left
        .iter()
        .zip(right)
        .take_while(|(left, right)| left == right)
        .count();
    let (left_rest, right_rest) = (&left[prefix..], &right[prefix..]);
    match left_rest.len().cmp(&right_rest.len()) {
        std::cmp::Ordering::Equal => {
            left_rest.is_empty()
                || left_rest[1..] == right_rest[1..]
                || (left_rest.len() >= 2
                    && left_rest[0] == right_rest[1]
                    && left_rest[1] == right_rest[0]
                    && left_rest[2..] == right_rest[2..])
        }
        std::cmp::Ordering::Less => left_rest == &right_rest[1..],
        std::cmp::Ordering::Greater => &left_rest[1..] == right_rest,
    }
}

/// Optimal string alignment distance, or `None` when it exceeds `edits_max`.
fn bounded_distance(left: &[u8], right: &[u8], edits_max: usize) -> Option<usize> {
    const WIDTH: usize = normalize::TOKEN_BYTES_MAX + 1;
    if left.len() >= WIDTH || right.len() >= WIDTH {
        return None;
    }
    // Three rows of the dynamic programme, used in rotation: two back (for
    // transpositions), one back, current.
    let mut rows = [[0u8; WIDTH]; 3];
    for (column, cell) in rows[0].iter_mut().enumerate().take(right.len() + 1) {
        *cell = column as u8;
    }
    for row in 1..=left.len() {
        let (current, previous, before) = (row % 3, (row + 2) % 3, (row + 1) % 3);
        rows[current][0] = row as u8;
        let mut row_min = rows[current][0];
        for column in 1..=right.len() {
            let cost = u8::from(left[row - 1] != right[column - 1]);
            let mut best = (rows[previous][column] + 1)
                .min(rows[current][column - 1] + 1)
                .min(rows[previous][column - 1] + cost);
            if row > 1
                && column > 1
                && left[row - 1] == right[column - 2]
                && left[row - 2] == right[column - 1]
            {
                best = best.min(rows[before][column - 2] + 1);
            }
            rows[current][column] = best;
            row_min = row_min.min(best);
        }
        if usize::from(row_min) > edits_max {
            return None;
        }
    }
    let distance = usize::from(rows[left.len() % 3][right.len()]);
    (distance <= edits_max).then_some(distance)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_similarity_known_values() {
        assert_eq!(token_similarity(b"noriega", b"noriega"), 1.0);
        assert!((token_similarity(b"noriega", b"noreiga") - 0.857).abs() < 0.001);
        assert_eq!(token_similarity(b"mary", b"mark"), 0.75);
        assert_eq!(token_similarity(b"amit", b"jasmit"), 0.0);
        assert_eq!(token_similarity(b"ali", b"aly"), 0.0);
        assert_eq!(token_similarity(b"hasan", b"hasna"), 0.8);
        assert_eq!(token_similarity(b"hasan", b"hasanx"), 1.0 - 1.0 / 6.0);
        assert_eq!(token_similarity(b"hasan", b"hxsxn"), 0.0);
        assert_eq!(
            token_similarity(b"abdulaziz", b"abdulazzi"),
            1.0 - 1.0 / 9.0
        );
        assert_eq!(token_similarity(b"abdulaziz", b"abdlazzi"), 1.0 - 2.0 / 9.0);
        assert!((token_similarity(b"foundation", b"fonutdation") - 0.818).abs() < 0.001);
        assert_eq!(token_similarity(b"construction", b"xxxstruction"), 0.0);
    }

    #[test]
    fn deletion_variants_meet_within_the_allowed_edits() {
        let hashes = |token: &str| {
            let mut all = Vec::new();
            for_each_deletion_hash(token.as_bytes(), |hash| all.push(hash));
            all
        };
        let shares = |left: &str, right: &str| {
            let right = hashes(right);
            hashes(left).iter().any(|hash| right.contains(hash))
        };
        assert_eq!(hashes("abc").len(), 1);
        assert_eq!(hashes("abcd").len(), 5);
        assert_eq!(hashes("abcdef").len(), 1 + 6);
        assert_eq!(hashes("abcdefgh").len(), 1 + 8 + 28);
        assert!(shares("hawatma", "hawatmeh"));
        assert!(shares("abdulaziz", "abdlazzi"));
        assert!(shares("noriega", "noreiga"));
        assert!(shares("foundation", "fonutdation"));
        assert!(shares("ali", "alii"));
        assert!(!shares("ali", "aly"));
    }
}
