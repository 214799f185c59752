//! Built-in, offline insights on what the customer wrote: language (whatlang, as BCP-47),
//! sentiment (word lists for twelve languages, negation-aware, plus emoji) and a short extractive
//! summary.

use std::collections::HashMap;

use crate::text::{fold, words};
use baton_shared::domain::SentimentLabel;

/// ISO 639-3 (whatlang) → BCP-47 primary language subtag, where a two-letter one exists.
const ISO639_1: &[(&str, &str)] = &[
    ("eng", "en"),
    ("spa", "es"),
    ("por", "pt"),
    ("fra", "fr"),
    ("deu", "de"),
    ("ita", "it"),
    ("nld", "nl"),
    ("arb", "ar"),
    ("hin", "hi"),
    ("ind", "id"),
    ("tur", "tr"),
    ("rus", "ru"),
    ("ukr", "uk"),
    ("pol", "pl"),
    ("ces", "cs"),
    ("slk", "sk"),
    ("ron", "ro"),
    ("hun", "hu"),
    ("swe", "sv"),
    ("dan", "da"),
    ("nob", "nb"),
    ("fin", "fi"),
    ("ell", "el"),
    ("heb", "he"),
    ("pes", "fa"),
    ("urd", "ur"),
    ("ben", "bn"),
    ("tam", "ta"),
    ("tel", "te"),
    ("mar", "mr"),
    ("guj", "gu"),
    ("kan", "kn"),
    ("mal", "ml"),
    ("pan", "pa"),
    ("tha", "th"),
    ("vie", "vi"),
    ("jpn", "ja"),
    ("kor", "ko"),
    ("cmn", "zh"),
    ("zsm", "ms"),
    ("tgl", "tl"),
    ("swh", "sw"),
    ("bul", "bg"),
    ("srp", "sr"),
    ("hrv", "hr"),
    ("slv", "sl"),
    ("lit", "lt"),
    ("lav", "lv"),
    ("est", "et"),
    ("cat", "ca"),
    ("aze", "az"),
    ("kat", "ka"),
    ("hye", "hy"),
    ("uzb", "uz"),
    ("amh", "am"),
    ("yor", "yo"),
    ("zul", "zu"),
    ("afr", "af"),
    ("epo", "eo"),
    ("bel", "be"),
    ("khm", "km"),
    ("mya", "my"),
    ("nep", "ne"),
    ("sin", "si"),
    ("ori", "or"),
    ("aka", "ak"),
    ("sna", "sn"),
    ("lat", "la"),
    ("jav", "jv"),
    ("tuk", "tk"),
    ("yid", "yi"),
    ("hat", "ht"),
];

/// Below this confidence an unreliable guess is no answer (whatlang says 0.02 for "ok").
const MIN_CONFIDENCE: f64 = 0.15;

/// The language of `text` as a BCP-47 code, when whatlang is confident enough; `hint` (the
/// language a request phrase matched in) settles short or unreliable texts.
pub fn language(text: &str, hint: Option<&str>) -> Option<String> {
    let info = whatlang::detect(text);
    match info {
        Some(info)
            if info.is_reliable() || (hint.is_none() && info.confidence() >= MIN_CONFIDENCE) =>
        {
            let code = info.lang().code();
            Some(
                ISO639_1
                    .iter()
                    .find(|(three, _)| *three == code)
                    .map_or(code, |(_, two)| *two)
                    .to_owned(),
            )
        }
        _ => hint.map(str::to_owned),
    }
}

/// Sentiment words per language; `*` matches words that begin so. Folded when used.
const POSITIVE: &[&str] = &[
    // en
    "thank*",
    "great",
    "good",
    "love",
    "perfect",
    "excellent",
    "awesome",
    "happy",
    "amazing",
    "helpful",
    "appreciate*",
    "nice",
    "wonderful",
    "glad",
    "resolved",
    "fantastic",
    // es
    "gracias",
    "genial",
    "bueno",
    "buena",
    "excelente",
    "perfecto",
    "encanta",
    "feliz",
    "maravillos*",
    "amable",
    "agradezco",
    "estupendo",
    // pt
    "obrigad*",
    "otimo",
    "otima",
    "bom",
    "boa",
    "excelente",
    "perfeito",
    "adorei",
    "feliz",
    "maravilhos*",
    "legal",
    "agradeco",
    // fr
    "merci",
    "super",
    "parfait",
    "excellent*",
    "genial",
    "content*",
    "heureu*",
    "ravi*",
    "formidable",
    "magnifique",
    // de
    "danke",
    "super",
    "toll",
    "perfekt",
    "gut",
    "prima",
    "wunderbar",
    "zufrieden",
    "hervorragend",
    "freue",
    "klasse",
    // it
    "grazie",
    "ottimo",
    "ottima",
    "perfetto",
    "bravo",
    "bene",
    "felice",
    "contento",
    "fantastico",
    "gentile",
    // nl
    "bedankt",
    "dank",
    "geweldig",
    "prima",
    "perfect",
    "goed",
    "blij",
    "fijn",
    "tevreden",
    "uitstekend",
    // ar
    "شكرا",
    "ممتاز",
    "رائع",
    "جميل",
    "سعيد",
    "احسنت",
    "جيد",
    "ممتازه",
    "مشكور",
    // hi
    "धन्यवाद",
    "शुक्रिया",
    "बढ़िया",
    "अच्छा",
    "अच्छी",
    "shukriya",
    "dhanyavaad",
    "badhiya",
    "accha",
    "achha",
    "mast",
    // id
    "terima kasih",
    "makasih",
    "bagus",
    "mantap",
    "senang",
    "puas",
    "hebat",
    "baik",
    // tr
    "tesekkur*",
    "sagol",
    "harika",
    "mukemmel",
    "guzel",
    "super",
    "memnun*",
    "iyi",
    // ru
    "спасибо",
    "отлично",
    "хорош*",
    "прекрасн*",
    "супер",
    "доволен",
    "довольна",
    "замечательн*",
    "благодар*",
];

const NEGATIVE: &[&str] = &[
    // en
    "bad",
    "terrible",
    "awful",
    "horrible",
    "worst",
    "angry",
    "useless",
    "broken",
    "wrong",
    "hate",
    "disappoint*",
    "frustrat*",
    "ridiculous",
    "unacceptable",
    "scam",
    "refund",
    "never",
    "problem",
    "issue",
    "complain*",
    "waiting",
    "late",
    "still",
    "annoy*",
    "stupid",
    "damaged",
    "cancel*",
    "fraud",
    // es
    "malo",
    "mala",
    "pesimo",
    "pesima",
    "horrible",
    "terrible",
    "enojad*",
    "molest*",
    "inutil",
    "problema",
    "queja",
    "reclamo",
    "estafa",
    "fatal",
    "harto",
    "harta",
    "decepcion*",
    "tarde",
    "roto",
    "rota",
    "devolucion",
    "todavia",
    // pt
    "ruim",
    "pessimo",
    "pessima",
    "horrivel",
    "terrivel",
    "raiva",
    "inutil",
    "problema",
    "reclamacao",
    "golpe",
    "absurdo",
    "decepcion*",
    "atrasad*",
    "quebrad*",
    "cansad*",
    // fr
    "mauvais",
    "nul",
    "nulle",
    "horrible",
    "terrible",
    "inadmissible",
    "inacceptable",
    "probleme",
    "arnaque",
    "decu",
    "decue",
    "enerve*",
    "furieux",
    "retard",
    "casse",
    "remboursement",
    "toujours",
    // de
    "schlecht",
    "schrecklich",
    "furchtbar",
    "katastroph*",
    "arger*",
    "wutend",
    "nutzlos",
    "problem",
    "beschwerde",
    "betrug",
    "enttausch*",
    "kaputt",
    "unverschamt",
    "immer noch",
    "verspat*",
    // it
    "pessimo",
    "pessima",
    "terribile",
    "orribile",
    "arrabbiat*",
    "inutile",
    "problema",
    "reclamo",
    "truffa",
    "vergogna",
    "deluso",
    "delusa",
    "rotto",
    "ritardo",
    "rimborso",
    // nl
    "slecht",
    "vreselijk",
    "verschrikkelijk",
    "boos",
    "nutteloos",
    "probleem",
    "klacht",
    "oplichting",
    "teleurgesteld",
    "kapot",
    "belachelijk",
    "nog steeds",
    // ar
    "سيء",
    "سيئه",
    "مشكله",
    "زعلان",
    "غاضب",
    "سرقه",
    "نصب",
    "تاخير",
    "شكوى",
    "مش شغال",
    "خربان",
    "زفت",
    // hi
    "बुरा",
    "खराब",
    "बेकार",
    "समस्या",
    "शिकायत",
    "धोखा",
    "गुस्सा",
    "kharab",
    "bekaar",
    "bekar",
    "problem",
    "shikayat",
    "dhokha",
    "gussa",
    "bakwas",
    // id
    "buruk",
    "jelek",
    "kecewa",
    "marah",
    "masalah",
    "rusak",
    "penipuan",
    "lambat",
    "parah",
    "komplain",
    "kesal",
    // tr
    "kotu",
    "berbat",
    "rezalet",
    "sinir*",
    "sorun",
    "sikayet",
    "dolandir*",
    "bozuk",
    "gec",
    "hayal kirikligi",
    "iade",
    // ru
    "плохо",
    "ужасн*",
    "отвратительн*",
    "злой",
    "бесполезн*",
    "проблем*",
    "жалоб*",
    "обман*",
    "разочарован*",
    "сломан*",
    "задержк*",
    "возврат",
    "до сих пор",
];

const NEGATORS: &[&str] = &[
    "not",
    "no",
    "never",
    "dont",
    "doesnt",
    "didnt",
    "isnt",
    "wasnt",
    "nao",
    "nunca",
    "ne",
    "pas",
    "nicht",
    "kein",
    "keine",
    "non",
    "niet",
    "geen",
    "لا",
    "مش",
    "ما",
    "नहीं",
    "nahi",
    "tidak",
    "gak",
    "bukan",
    "degil",
    "не",
    "нет",
];

const POSITIVE_EMOJI: &[char] = &[
    '😊', '🙂', '😀', '😃', '😄', '😁', '😍', '🥰', '👍', '🙏', '❤', '💯', '🎉', '👌',
];
const NEGATIVE_EMOJI: &[char] = &[
    '😡', '😠', '🤬', '😞', '😢', '😭', '👎', '💔', '😤', '😩', '😫', '🙄', '😒',
];

struct Lexicon {
    positive: Vec<Vec<String>>,
    negative: Vec<Vec<String>>,
    negators: Vec<String>,
}

static LEXICON: std::sync::LazyLock<Lexicon> = std::sync::LazyLock::new(|| {
    let split = |list: &[&str]| {
        list.iter()
            .map(|p| fold(p).split_whitespace().map(str::to_owned).collect())
            .collect()
    };
    Lexicon {
        positive: split(POSITIVE),
        negative: split(NEGATIVE),
        negators: NEGATORS.iter().map(|n| fold(n)).collect(),
    }
});

fn word_is(word: &str, pattern: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(stem) => word.starts_with(stem),
        None => word == pattern,
    }
}

fn phrase_at(ws: &[String], i: usize, phrase: &[String]) -> bool {
    i + phrase.len() <= ws.len()
        && phrase
            .iter()
            .enumerate()
            .all(|(k, p)| word_is(&ws[i + k], p))
}

/// Positive and negative weight in one message: a negator within the three words before a
/// sentiment word turns it around ("not good" is negative, "no problem" positive).
fn message_polarity(text: &str) -> (f64, f64) {
    let lex = &*LEXICON;
    let ws: Vec<String> = words(&fold(text)).into_iter().map(|w| w.text).collect();
    let (mut pos, mut neg) = (0.0, 0.0);
    for i in 0..ws.len() {
        let negated = ws[i.saturating_sub(3)..i]
            .iter()
            .any(|w| lex.negators.contains(w));
        let is_pos = lex.positive.iter().any(|p| phrase_at(&ws, i, p));
        let is_neg = lex.negative.iter().any(|p| phrase_at(&ws, i, p));
        match (is_pos, is_neg, negated) {
            (true, false, false) | (false, true, true) => pos += 1.0,
            (true, false, true) | (false, true, false) => neg += 1.0,
            _ => {}
        }
    }
    for c in text.chars() {
        if POSITIVE_EMOJI.contains(&c) {
            pos += 1.0;
        } else if NEGATIVE_EMOJI.contains(&c) {
            neg += 1.0;
        }
    }
    // Shouting and repeated exclamation marks sharpen a complaint.
    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    let upper = letters.iter().filter(|c| c.is_uppercase()).count();
    if neg > 0.0 && (text.contains("!!") || (letters.len() >= 8 && upper * 10 >= letters.len() * 7))
    {
        neg += 0.5;
    }
    (pos, neg)
}

/// Sentiment of the customer's messages, later ones weighing more: a label and a score in
/// [-1, 1].
pub fn sentiment<S: AsRef<str>>(messages: &[S]) -> (SentimentLabel, f64) {
    let n = messages.len().max(1) as f64;
    let (mut pos, mut neg) = (0.0, 0.0);
    for (i, m) in messages.iter().enumerate() {
        let weight = 1.0 + i as f64 / n;
        let (p, q) = message_polarity(m.as_ref());
        pos += p * weight;
        neg += q * weight;
    }
    let score = ((pos - neg) / (pos + neg + 1.0)).clamp(-1.0, 1.0);
    let score = (score * 100.0).round() / 100.0;
    let label = if score <= -0.25 {
        SentimentLabel::Negative
    } else if score >= 0.25 {
        SentimentLabel::Positive
    } else {
        SentimentLabel::Neutral
    };
    (label, score)
}

/// Short, common words that say little about the problem (all twelve languages); words of three
/// letters or fewer are skipped anyway.
const STOPWORDS: &[&str] = &[
    "that",
    "this",
    "with",
    "have",
    "from",
    "your",
    "what",
    "when",
    "there",
    "they",
    "would",
    "please",
    "about",
    "just",
    "hello",
    "thanks",
    "para",
    "como",
    "pero",
    "esto",
    "esta",
    "porque",
    "tengo",
    "quiero",
    "hola",
    "gracias",
    "voce",
    "isso",
    "muito",
    "estou",
    "obrigado",
    "pour",
    "avec",
    "dans",
    "mais",
    "bonjour",
    "merci",
    "nicht",
    "aber",
    "habe",
    "eine",
    "einen",
    "bitte",
    "danke",
    "sono",
    "della",
    "grazie",
    "ciao",
    "niet",
    "maar",
    "heb",
    "voor",
    "hallo",
    "saya",
    "yang",
    "dengan",
    "untuk",
    "tidak",
    "bunu",
    "için",
    "ama",
    "merhaba",
    "это",
    "что",
    "как",
    "меня",
    "пожалуйста",
    "спасибо",
    "здравствуйте",
];

/// An extractive summary: the customer's most informative sentences, in the order written,
/// `max_chars` at most. Informative = made of words the customer repeats, with numbers (order
/// ids, amounts) and the opening problem statement favoured.
pub fn summary<S: AsRef<str>>(messages: &[S], max_chars: usize) -> String {
    let stop: Vec<String> = STOPWORDS.iter().map(|w| fold(w)).collect();
    let mut sentences: Vec<(usize, String, Vec<String>)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        for s in split_sentences(m.as_ref()) {
            let ws: Vec<String> = words(&fold(&s))
                .into_iter()
                .map(|w| w.text)
                .filter(|w| w.chars().count() > 3 && !stop.contains(w))
                .collect();
            sentences.push((i, s, ws));
        }
    }
    if sentences.is_empty() {
        return String::new();
    }
    let mut freq: HashMap<&str, f64> = HashMap::new();
    for (_, _, ws) in &sentences {
        for w in ws {
            *freq.entry(w.as_str()).or_default() += 1.0;
        }
    }
    let total = messages.len().max(1);
    let mut scored: Vec<(f64, usize)> = sentences
        .iter()
        .enumerate()
        .map(|(idx, (msg, s, ws))| {
            let mut score: f64 =
                ws.iter().map(|w| freq[w.as_str()]).sum::<f64>() / ((ws.len() + 1) as f64).sqrt();
            if s.chars().any(|c| c.is_ascii_digit()) {
                score += 1.0;
            }
            if *msg < 3.min(total) {
                score += 1.5;
            }
            if ws.is_empty() {
                score = 0.0;
            }
            (score, idx)
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut chosen: Vec<usize> = Vec::new();
    let mut used = 0;
    for (score, idx) in scored {
        if score <= 0.0 || chosen.len() == 3 {
            break;
        }
        let len = sentences[idx].1.chars().count();
        if used + len + 3 > max_chars && !chosen.is_empty() {
            continue;
        }
        used += len + 3;
        chosen.push(idx);
    }
    chosen.sort_unstable();
    let mut out = chosen
        .iter()
        .map(|&i| sentences[i].1.as_str())
        .collect::<Vec<_>>()
        .join(" … ");
    if out.chars().count() > max_chars {
        out = out
            .chars()
            .take(max_chars.saturating_sub(1))
            .collect::<String>()
            + "…";
    }
    out
}

fn split_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(c);
        if matches!(c, '.' | '!' | '?' | '\n' | '。' | '।' | '؟') {
            let s = current.trim().to_owned();
            if s.chars().any(char::is_alphanumeric) {
                out.push(s);
            }
            current.clear();
        }
    }
    let s = current.trim().to_owned();
    if s.chars().any(char::is_alphanumeric) {
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_is_a_bcp47_code() {
        assert_eq!(
            language(
                "Hola, mi pedido no ha llegado todavía y necesito ayuda",
                None
            )
            .as_deref(),
            Some("es")
        );
        assert_eq!(
            language("Olá, meu pedido ainda não chegou e preciso de ajuda", None).as_deref(),
            Some("pt")
        );
        assert_eq!(
            language("Здравствуйте, мой заказ до сих пор не пришёл", None).as_deref(),
            Some("ru")
        );
        assert_eq!(
            language("Merhaba, siparişim hâlâ gelmedi, yardım eder misiniz", None).as_deref(),
            Some("tr")
        );
        assert_eq!(language("ok", Some("de")).as_deref(), Some("de"));
        assert_eq!(language("", None), None);
        assert_eq!(language("ok", None), None);
        assert_eq!(
            language("mujhe kisi insaan se baat karni hai", Some("hi")).as_deref(),
            Some("hi")
        );
    }

    #[test]
    fn sentiment_reads_twelve_languages_and_negation() {
        let cases: &[(&str, SentimentLabel)] = &[
            (
                "This is terrible, my order is broken and nobody helps!!",
                SentimentLabel::Negative,
            ),
            (
                "Thank you so much, that was perfect",
                SentimentLabel::Positive,
            ),
            ("My order number is 1234", SentimentLabel::Neutral),
            ("no problem at all", SentimentLabel::Positive),
            (
                "el servicio es pésimo, estoy harto",
                SentimentLabel::Negative,
            ),
            (
                "muito obrigado, atendimento ótimo",
                SentimentLabel::Positive,
            ),
            (
                "c'est inadmissible, toujours pas de remboursement",
                SentimentLabel::Negative,
            ),
            ("Danke, alles super", SentimentLabel::Positive),
            ("servizio pessimo, sono deluso", SentimentLabel::Negative),
            (
                "heel slecht, ik ben teleurgesteld",
                SentimentLabel::Negative,
            ),
            ("الخدمة سيئة جدا وعندي مشكلة", SentimentLabel::Negative),
            ("बहुत बेकार सेवा है, शिकायत करनी है", SentimentLabel::Negative),
            ("terima kasih, sangat bagus", SentimentLabel::Positive),
            ("berbat bir hizmet, çok kötü", SentimentLabel::Negative),
            ("ужасный сервис, одни проблемы", SentimentLabel::Negative),
            ("😡😡", SentimentLabel::Negative),
        ];
        for (text, expected) in cases {
            let (label, score) = sentiment(&[*text]);
            assert_eq!(label, *expected, "{text:?} scored {score}");
            assert!((-1.0..=1.0).contains(&score));
        }
    }

    #[test]
    fn summary_keeps_the_problem_and_the_order_number_within_bounds() {
        let msgs = [
            "Hi",
            "My order 48213 arrived with a broken screen.",
            "I sent photos of the broken screen yesterday.",
            "ok",
            "What's the weather like?",
            "I want a refund for the broken screen or a new phone.",
        ];
        let s = summary(&msgs, 400);
        assert!(s.contains("48213"), "{s}");
        assert!(s.contains("refund"), "{s}");
        assert!(!s.contains("weather"), "{s}");
        assert!(s.chars().count() <= 400);
        let short = summary(&msgs, 60);
        assert!(short.chars().count() <= 60, "{short}");
        assert_eq!(summary::<&str>(&[], 100), "");
    }
}
