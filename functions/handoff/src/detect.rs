//! Deciding from a customer's message that they asked for a person, in twelve languages.
//!
//! Each language has word lists ([`super::phrases`]). Within one clause, a request is a person word
//! close to a verb of wanting or contact ("I want to speak to a human", "quiero hablar con un
//! asesor"), or a direct request ("transfer me"), or the whole message being a person word with
//! fillers ("HUMAN please"). A clause is skipped when it asks who the customer is talking to ("are
//! you a bot?") or when a negation sits next to the request ("I don't want an agent"). Words match
//! after folding (case, accents), and words of five letters or more with one typo (two from nine
//! letters), so "humna" and "represenative" count.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use crate::phrases::{TABLES, Table};
use crate::text::{Word, distance_chars, fold, words};

/// Words that make a following person word someone else's ("my agent said…").
const POSSESSIVES: &[&str] = &[
    "my",
    "his",
    "her",
    "their",
    "our",
    "mi",
    "mis",
    "meu",
    "minha",
    "mon",
    "ma",
    "mes",
    "mein",
    "meine",
    "meinen",
    "meinem",
    "sein",
    "seine",
    "seinen",
    "mio",
    "mia",
    "miei",
    "mijn",
    "zijn",
    "haar",
    "onze",
    "мои",
    "моя",
    "моего",
    "моим",
    "моему",
    "его",
    "ее",
    "benim",
];

/// How far apart a verb and a person word may be: four words when the person follows the verb,
/// three when it comes first (German, Dutch, Hindi and Turkish put the verb last).
const AFTER_WINDOW: usize = 4;
const BEFORE_WINDOW: usize = 3;
/// The longest message that can be a bare request ("real person please now").
const SHORT_MESSAGE_WORDS: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectionKind {
    /// A phrase table matched.
    CustomerAsked,
    /// A configured keyword matched.
    Keyword,
}

/// A customer's request for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detection {
    pub kind: DetectionKind,
    /// The language whose table matched.
    pub language: &'static str,
    /// The folded words that matched.
    pub phrase: String,
}

struct PatWord {
    chars: Vec<char>,
    prefix: bool,
    /// Typos tolerated (negations and questions must match exactly: "keinem" is not "einem").
    fuzzy: bool,
}

struct Pattern {
    words: Vec<PatWord>,
    text: String,
}

#[derive(Default)]
struct Compiled {
    lang: &'static str,
    strong: Vec<Pattern>,
    weak: Vec<Pattern>,
    contact: Vec<Pattern>,
    want: Vec<Pattern>,
    direct: Vec<Pattern>,
    negations: Vec<Pattern>,
    fillers: Vec<Pattern>,
    keywords: Vec<Pattern>,
}

fn compile(list: &[&str]) -> Vec<Pattern> {
    list.iter().map(|p| pattern(p)).collect()
}

fn compile_exact(list: &[&str]) -> Vec<Pattern> {
    let mut out = compile(list);
    for p in &mut out {
        p.words.iter_mut().for_each(|w| w.fuzzy = false);
    }
    out
}

fn pattern(p: &str) -> Pattern {
    let folded = fold(p);
    let words = folded
        .split(|c: char| !c.is_alphanumeric() && c != '*')
        .filter(|w| !w.is_empty())
        .map(|w| PatWord {
            chars: w.trim_end_matches('*').chars().collect(),
            prefix: w.ends_with('*'),
            fuzzy: true,
        })
        .collect();
    Pattern {
        words,
        text: folded.replace('*', ""),
    }
}

impl Compiled {
    fn new(t: &Table) -> Self {
        Self {
            lang: t.lang,
            strong: compile(t.strong),
            weak: compile(t.weak),
            contact: compile(t.contact),
            want: compile(t.want),
            direct: compile(t.direct),
            negations: compile_exact(t.negations),
            fillers: compile(t.fillers),
            keywords: Vec::new(),
        }
    }
}

static BUILTIN: LazyLock<Vec<Compiled>> =
    LazyLock::new(|| TABLES.iter().map(Compiled::new).collect());
static POSSESSIVE: LazyLock<Vec<Pattern>> = LazyLock::new(|| compile_exact(POSSESSIVES));
/// Every language's negations and questions: a Spanish "no" also turns around the Portuguese
/// table's match of "no quiero hablar con un humano".
static ALL_NEGATIONS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    compile_exact(
        &TABLES
            .iter()
            .flat_map(|t| t.negations.iter().copied())
            .collect::<Vec<_>>(),
    )
});
static ALL_SUPPRESSORS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    compile_exact(
        &TABLES
            .iter()
            .flat_map(|t| t.suppressors.iter().copied())
            .collect::<Vec<_>>(),
    )
});
/// Languages whose negation follows the verb.
const NEGATION_FOLLOWS: &[&str] = &["hi", "tr"];

/// A folded word and, for Arabic, its forms without attached particles ("والموظف" → "موظف").
struct Token {
    forms: Vec<Vec<char>>,
    clause: u32,
}

const ARABIC_CLITICS: &[&str] = &["وال", "بال", "فال", "كال", "لل", "ال", "و", "ب", "ل", "ف"];

fn tokens(ws: Vec<Word>) -> Vec<Token> {
    ws.into_iter()
        .map(|w| {
            let mut forms = vec![w.text.chars().collect::<Vec<char>>()];
            if w.text
                .chars()
                .next()
                .is_some_and(|c| ('\u{0600}'..='\u{06FF}').contains(&c))
            {
                for clitic in ARABIC_CLITICS {
                    if let Some(rest) = w.text.strip_prefix(clitic)
                        && rest.chars().count() >= 3
                    {
                        forms.push(rest.chars().collect());
                    }
                }
            }
            Token {
                forms,
                clause: w.clause,
            }
        })
        .collect()
}

fn word_matches(token: &[char], p: &PatWord) -> bool {
    let plen = p.chars.len();
    if p.prefix {
        if token.len() < plen {
            return false;
        }
        let head = &token[..plen];
        return head == p.chars.as_slice() || (p.fuzzy && plen >= 5 && fuzzy(head, &p.chars, 1));
    }
    if token == p.chars.as_slice() {
        return true;
    }
    if !p.fuzzy {
        return false;
    }
    let allowed = match plen {
        0..=4 => return false,
        5..=8 => 1,
        _ => 2,
    };
    fuzzy(token, &p.chars, allowed)
}

fn fuzzy(a: &[char], b: &[char], max: usize) -> bool {
    // A typo stays within its script: Latin never meets Cyrillic, Arabic or Devanagari.
    let block = |w: &[char]| w.first().map(|c| *c as u32 >> 8);
    if block(a) != block(b) {
        return false;
    }
    // With one edit, one of the first two characters survives in place or one step over.
    if max == 1
        && a.len() > 1
        && b.len() > 1
        && a[0] != b[0]
        && a[1] != b[1]
        && a[0] != b[1]
        && a[1] != b[0]
    {
        return false;
    }
    distance_chars(a, b, max).is_some()
}

/// A match of a pattern on words `start..end`.
#[derive(Debug, Clone, Copy)]
struct Hit {
    start: usize,
    end: usize,
    clause: u32,
    pattern: usize,
}

fn find(patterns: &[Pattern], toks: &[Token]) -> Vec<Hit> {
    let mut hits = Vec::new();
    for start in 0..toks.len() {
        for (i, p) in patterns.iter().enumerate() {
            let n = p.words.len();
            if n == 0 || start + n > toks.len() {
                continue;
            }
            let clause = toks[start].clause;
            let all = p.words.iter().enumerate().all(|(k, w)| {
                let t = &toks[start + k];
                t.clause == clause && t.forms.iter().any(|f| word_matches(f, w))
            });
            if all {
                hits.push(Hit {
                    start,
                    end: start + n,
                    clause,
                    pattern: i,
                });
            }
        }
    }
    hits
}

/// Customer-request detection, with the built-in tables and any configured keywords.
#[derive(Default)]
pub struct Detector {
    /// Configured keywords, per language (matched as direct requests).
    extra: Vec<Compiled>,
}

impl std::fmt::Debug for Detector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field(
                "keyword_languages",
                &self.extra.iter().map(|c| c.lang).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl Detector {
    /// Built-in tables plus extra keywords per language (a keyword may be several words).
    pub fn with_keywords(keywords: &BTreeMap<String, Vec<String>>) -> Self {
        let extra = keywords
            .iter()
            .map(|(lang, list)| {
                let lang: &'static str = TABLES
                    .iter()
                    .map(|t| t.lang)
                    .find(|l| l.eq_ignore_ascii_case(lang))
                    .unwrap_or("und");
                let mut c = match TABLES.iter().find(|t| t.lang == lang) {
                    Some(t) => Compiled {
                        lang,
                        negations: compile_exact(t.negations),
                        ..Compiled::default()
                    },
                    None => Compiled {
                        lang,
                        ..Compiled::default()
                    },
                };
                c.keywords = list.iter().map(|k| pattern(k)).collect();
                c
            })
            .collect();
        Self { extra }
    }

    /// Whether `text` (a customer's message) asks for a person, and how.
    pub fn detect(&self, text: &str) -> Option<Detection> {
        if text.trim().is_empty() {
            return None;
        }
        let toks = tokens(words(&fold(text)));
        if toks.is_empty() {
            return None;
        }
        let negations = find(&ALL_NEGATIONS, &toks);
        let suppressed: Vec<u32> = find(&ALL_SUPPRESSORS, &toks)
            .iter()
            .map(|h| h.clause)
            .collect();
        for table in BUILTIN.iter() {
            if let Some(phrase) = request(table, &toks, &negations, &suppressed) {
                return Some(Detection {
                    kind: DetectionKind::CustomerAsked,
                    language: table.lang,
                    phrase,
                });
            }
        }
        for table in &self.extra {
            let after_verb = post_verbal_negations(table, &toks);
            for hit in find(&table.keywords, &toks) {
                if suppressed.contains(&hit.clause)
                    || negated(&negations, &hit, &toks, false)
                    || negated(&after_verb, &hit, &toks, true)
                {
                    continue;
                }
                return Some(Detection {
                    kind: DetectionKind::Keyword,
                    language: table.lang,
                    phrase: table.keywords[hit.pattern].text.clone(),
                });
            }
        }
        None
    }
}

/// A negation right before a hit (one word between at most; "no" only right before) or right
/// after a verb ("konuşmak istemiyorum", "baat nahi karni").
fn negated(negations: &[Hit], hit: &Hit, toks: &[Token], follows: bool) -> bool {
    negations.iter().any(|n| {
        if n.clause != hit.clause {
            return false;
        }
        let bare_no = n.end - n.start == 1 && toks[n.start].forms[0] == ['n', 'o'];
        let gap = if bare_no { 0 } else { 1 };
        (n.end <= hit.start && hit.start - n.end <= gap) || (follows && n.start == hit.end)
    })
}

/// The table's own negations, for languages where they follow the verb; every language's
/// negations before a request are already among everyone's (`ALL_NEGATIONS`).
fn post_verbal_negations(t: &Compiled, toks: &[Token]) -> Vec<Hit> {
    if NEGATION_FOLLOWS.contains(&t.lang) {
        find(&t.negations, toks)
    } else {
        Vec::new()
    }
}

fn request(
    t: &Compiled,
    toks: &[Token],
    all_negations: &[Hit],
    suppressed: &[u32],
) -> Option<String> {
    let after_verb = post_verbal_negations(t, toks);
    let is_negated =
        |h: &Hit| negated(all_negations, h, toks, false) || negated(&after_verb, h, toks, true);
    let open = |h: &Hit| !suppressed.contains(&h.clause);
    let possessed = |h: &Hit| {
        h.start > 0
            && POSSESSIVE.iter().any(|p| {
                p.words.len() == 1
                    && toks[h.start - 1]
                        .forms
                        .iter()
                        .any(|f| word_matches(f, &p.words[0]))
            })
    };

    let direct = find(&t.direct, toks);
    if let Some(h) = direct.iter().find(|h| open(h) && !is_negated(h)) {
        return Some(t.direct[h.pattern].text.clone());
    }

    let strong: Vec<Hit> = find(&t.strong, toks)
        .into_iter()
        .filter(|h| open(h) && !possessed(h))
        .collect();
    let weak: Vec<Hit> = find(&t.weak, toks)
        .into_iter()
        .filter(|h| open(h) && !possessed(h))
        .collect();
    if strong.is_empty() && weak.is_empty() {
        return None;
    }
    let contact = find(&t.contact, toks);
    let want = find(&t.want, toks);
    let near = |verb: &Hit, person: &Hit| {
        verb.clause == person.clause
            && if person.start >= verb.end {
                person.start - verb.end < AFTER_WINDOW
            } else {
                verb.start >= person.end && verb.start - person.end < BEFORE_WINDOW
            }
    };
    let clean = |hits: &[&Hit]| hits.iter().all(|h| !is_negated(h));
    for p in &strong {
        for v in contact.iter().chain(&want) {
            if near(v, p) && clean(&[v, p]) && clean(&verbs_in(&contact, &want, p.clause)) {
                return Some(t.strong[p.pattern].text.clone());
            }
        }
    }
    for p in &weak {
        for c in &contact {
            let wanted = want
                .iter()
                .any(|w| w.clause == p.clause && (near(w, p) || near(w, c) || near(c, w)));
            if near(c, p) && wanted && clean(&[c, p]) && clean(&verbs_in(&contact, &want, p.clause))
            {
                return Some(t.weak[p.pattern].text.clone());
            }
        }
    }

    // A bare request: only person words and fillers, at least one strong person word.
    if toks.len() <= SHORT_MESSAGE_WORDS
        && !strong.is_empty()
        && all_negations.is_empty()
        && suppressed.is_empty()
    {
        let mut covered = vec![false; toks.len()];
        for h in strong.iter().chain(find(&t.fillers, toks).iter()) {
            covered[h.start..h.end].iter_mut().for_each(|c| *c = true);
        }
        if covered.iter().all(|c| *c) {
            return Some(t.strong[strong[0].pattern].text.clone());
        }
    }
    None
}

fn verbs_in<'h>(contact: &'h [Hit], want: &'h [Hit], clause: u32) -> Vec<&'h Hit> {
    contact
        .iter()
        .chain(want)
        .filter(|h| h.clause == clause)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (language, asks for a person?, message).
    const CASES: &[(&str, bool, &str)] = &[
        ("en", true, "I want to speak to a human"),
        ("en", true, "can i talk to a real person please"),
        ("en", true, "HUMAN!!!"),
        ("en", true, "agent pls"),
        ("en", true, "I need a representitive now"),
        (
            "en",
            true,
            "let me speak with someone from customer service",
        ),
        ("en", true, "this is useless, transfer me"),
        ("en", true, "i need to speak to a humna"),
        ("en", true, "I don't understand. I want a real person"),
        ("en", true, "Can I talk to someone?"),
        ("en", false, "My travel agent booked the wrong flight"),
        ("en", false, "Are you a human or a bot?"),
        ("en", false, "I don't want to talk to a human, just fix it"),
        ("en", false, "I already talked to an agent yesterday"),
        ("en", false, "People say your app is slow"),
        ("en", false, "The human resources department called me"),
        ("en", false, "I need a refund for order 1234"),
        ("es", true, "Quiero hablar con un humano"),
        ("es", true, "pásame con un asesor por favor"),
        ("es", true, "necesito hablar con alguien"),
        ("es", true, "no entiendo quiero un agente"),
        ("es", true, "quiero ablar con un umano"),
        ("es", true, "ASESOR"),
        ("es", false, "no quiero hablar con un humano"),
        ("es", false, "¿eres un bot o un humano?"),
        ("es", false, "mi agente de seguros me dijo que escribiera"),
        ("es", false, "la gente dice que tardan mucho"),
        ("pt", true, "quero falar com um atendente"),
        ("pt", true, "preciso falar com alguém"),
        ("pt", true, "me transfere pra um humano"),
        ("pt", true, "atendente por favor"),
        ("pt", true, "Gostaria de falar com uma pessoa real"),
        ("pt", false, "não quero falar com atendente"),
        ("pt", false, "você é um robô?"),
        ("pt", false, "meu agente de viagens cancelou"),
        ("fr", true, "je veux parler à un humain"),
        ("fr", true, "Je voudrais parler à un conseiller svp"),
        ("fr", true, "passez-moi un agent"),
        ("fr", true, "j'ai besoin de parler à quelqu'un"),
        ("fr", true, "un conseiller s'il vous plaît"),
        ("fr", false, "je ne veux pas parler à un humain"),
        ("fr", false, "êtes-vous un robot ?"),
        ("fr", false, "mon agent immobilier m'a dit de vous écrire"),
        ("de", true, "Ich möchte mit einem Menschen sprechen"),
        ("de", true, "ich will einen echten mitarbeiter sprechen"),
        ("de", true, "verbinden Sie mich bitte mit dem Kundenservice"),
        ("de", true, "Mitarbeiter bitte"),
        ("de", true, "kann ich mit jemandem sprechen?"),
        ("de", false, "ich will keinen Menschen sprechen"),
        ("de", false, "bist du ein Bot?"),
        ("de", false, "mein Berater hat gesagt ich soll schreiben"),
        ("it", true, "voglio parlare con un operatore"),
        ("it", true, "vorrei parlare con qualcuno"),
        ("it", true, "passami un umano"),
        ("it", true, "operatore per favore"),
        ("it", false, "non voglio parlare con un operatore"),
        ("it", false, "sei un bot?"),
        ("it", false, "il mio agente mi ha detto di scrivere"),
        ("nl", true, "ik wil met een medewerker praten"),
        ("nl", true, "Ik wil graag met iemand spreken"),
        ("nl", true, "verbind me door met een mens"),
        ("nl", true, "medewerker alstublieft"),
        ("nl", false, "ik wil geen medewerker spreken"),
        ("nl", false, "ben je een bot?"),
        ("nl", false, "mijn agent heeft dit geregeld"),
        ("ar", true, "أريد التحدث مع موظف"),
        ("ar", true, "ممكن اكلم خدمة العملاء"),
        ("ar", true, "بدي احكي مع حدا"),
        ("ar", true, "حولني لموظف من فضلك"),
        ("ar", true, "عايز اكلم انسان"),
        ("ar", false, "لا أريد التحدث مع موظف"),
        ("ar", false, "هل انت بوت؟"),
        ("ar", false, "الموظف في الفرع كان لطيفا"),
        ("hi", true, "मुझे किसी इंसान से बात करनी है"),
        ("hi", true, "एजेंट से बात कराओ"),
        ("hi", true, "mujhe kisi insaan se baat karni hai"),
        ("hi", true, "customer care se baat karao"),
        ("hi", false, "mujhe insaan se baat nahi karni"),
        ("hi", false, "kya tum insaan ho?"),
        ("hi", false, "मेरा ऑर्डर कहाँ है"),
        ("id", true, "saya mau bicara dengan manusia"),
        ("id", true, "tolong sambungkan saya ke customer service"),
        ("id", true, "saya ingin bicara dengan seseorang"),
        ("id", true, "admin dong"),
        ("id", false, "saya tidak mau bicara dengan manusia"),
        ("id", false, "apakah kamu bot?"),
        ("id", false, "orang tua saya sudah bayar"),
        ("tr", true, "bir insanla konuşmak istiyorum"),
        ("tr", true, "müşteri temsilcisiyle görüşmek istiyorum"),
        ("tr", true, "beni yetkiliye bağlayın"),
        ("tr", true, "temsilci lütfen"),
        ("tr", true, "biriyle konusmak istiyorum"),
        ("tr", false, "insanla konuşmak istemiyorum"),
        ("tr", false, "sen bot musun?"),
        ("tr", false, "siparişim nerede"),
        ("ru", true, "хочу поговорить с человеком"),
        ("ru", true, "соедините с оператором"),
        ("ru", true, "мне нужен живой человек"),
        ("ru", true, "оператор пожалуйста"),
        ("ru", true, "хочу поговорить с кем-то"),
        ("ru", false, "не хочу говорить с человеком"),
        ("ru", false, "ты бот?"),
        ("ru", false, "мой менеджер сказал написать вам"),
    ];

    #[test]
    fn every_language_table_phrase_is_classified_as_listed() {
        let d = Detector::default();
        let mut wrong = Vec::new();
        for (lang, expected, text) in CASES {
            let got = d.detect(text);
            if got.is_some() != *expected {
                wrong.push(format!("{lang}: {text:?} → {got:?}"));
            }
        }
        assert!(wrong.is_empty(), "misclassified:\n{}", wrong.join("\n"));
        for lang in TABLES.iter().map(|t| t.lang) {
            let (pos, neg) = CASES
                .iter()
                .filter(|c| c.0 == lang)
                .fold(
                    (0, 0),
                    |(p, n), c| {
                        if c.1 { (p + 1, n) } else { (p, n + 1) }
                    },
                );
            assert!(
                pos >= 4 && neg >= 3,
                "{lang} needs more cases: {pos} positive, {neg} negative"
            );
        }
    }

    #[test]
    fn a_positive_names_the_language_and_phrase() {
        let got = Detector::default()
            .detect("Quiero hablar con un humano")
            .unwrap();
        assert_eq!(got.kind, DetectionKind::CustomerAsked);
        assert_eq!(got.language, "es");
        assert_eq!(got.phrase, "humano");
    }

    #[test]
    fn configured_keywords_fire_unless_negated() {
        let mut kw = BTreeMap::new();
        kw.insert(
            "en".to_owned(),
            vec!["chargeback".to_owned(), "legal action".to_owned()],
        );
        kw.insert("es".to_owned(), vec!["reclamación formal".to_owned()]);
        let d = Detector::with_keywords(&kw);
        let got = d.detect("I will take legal action").unwrap();
        assert_eq!(
            (got.kind, got.language, got.phrase.as_str()),
            (DetectionKind::Keyword, "en", "legal action")
        );
        assert_eq!(
            d.detect("quiero poner una reclamacion formal")
                .unwrap()
                .language,
            "es"
        );
        assert!(d.detect("not a chargeback, just a question").is_none());
        assert!(
            Detector::default()
                .detect("I will take legal action")
                .is_none()
        );
    }
}
