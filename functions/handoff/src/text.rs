//! Text folding shared by detection and insights: lower case, accents and Arabic vowel marks
//! removed, letter variants unified, words split out, so "HUMANO", "humano" and "húmano" meet.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Folds one piece of text: NFKD, combining marks dropped, lower case, Turkish dotless i and
/// German ß spelled out, Arabic letter variants unified, letters repeated three or more times
/// cut to two ("pleeease" → "pleease").
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = '\0';
    let mut run = 0;
    for c in text.nfkd() {
        if is_combining_mark(c) || c == '\u{0640}' {
            continue;
        }
        for c in c.to_lowercase() {
            let c = match c {
                'ı' => 'i',
                'ß' => {
                    out.push('s');
                    's'
                }
                'ø' => 'o',
                'æ' => 'a',
                'ł' => 'l',
                'أ' | 'إ' | 'آ' | 'ٱ' => 'ا',
                'ى' => 'ي',
                'ة' => 'ه',
                'ؤ' => 'و',
                'ئ' => 'ي',
                '’' | '‘' | '`' | '´' => '\'',
                other => other,
            };
            if c == last {
                run += 1;
                if run >= 2 && c.is_alphabetic() {
                    continue;
                }
            } else {
                run = 0;
                last = c;
            }
            out.push(c);
        }
    }
    out
}

/// A word of folded text and the clause (sentence part) it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub clause: u32,
}

/// Splits folded text into words. `.`, `!`, `?`, `;`, `,` and line breaks end a clause.
/// English "n't" joins its word ("don't" → "dont"); other apostrophes split ("l'agent").
pub fn words(folded: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut clause = 0;
    let mut current = String::new();
    let mut chars = folded.chars().peekable();
    let flush = |current: &mut String, out: &mut Vec<Word>, clause: u32| {
        if !current.is_empty() {
            out.push(Word {
                text: std::mem::take(current),
                clause,
            });
        }
    };
    while let Some(c) = chars.next() {
        if c.is_alphanumeric() {
            current.push(c);
            continue;
        }
        if c == '\'' && current.ends_with('n') && chars.peek() == Some(&'t') {
            continue;
        }
        if c == '-' && !current.is_empty() && chars.peek().is_some_and(|n| n.is_alphanumeric()) {
            // "кто-то", "e-mail": keep hyphenated words as two words in the same clause.
            flush(&mut current, &mut out, clause);
            continue;
        }
        flush(&mut current, &mut out, clause);
        if matches!(
            c,
            '.' | '!' | '?' | ';' | ',' | '\n' | '¿' | '¡' | '،' | '؟' | '।' | '…'
        ) {
            clause += 1;
        }
    }
    flush(&mut current, &mut out, clause);
    out
}

/// Optimal-string-alignment distance between `a` and `b`, or `None` once it exceeds `max`.
pub fn distance_within(a: &str, b: &str, max: usize) -> Option<usize> {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    distance_chars(&a, &b, max)
}

/// Longest word compared with typos; longer ones must match exactly.
const MAX_FUZZY_CHARS: usize = 31;

/// [`distance_within`] on characters, without allocating (words up to 31 characters).
pub fn distance_chars(a: &[char], b: &[char], max: usize) -> Option<usize> {
    if a.len().abs_diff(b.len()) > max || a.len() > MAX_FUZZY_CHARS || b.len() > MAX_FUZZY_CHARS {
        return (a == b).then_some(0);
    }
    let width = b.len() + 1;
    let mut prev2 = [0usize; MAX_FUZZY_CHARS + 1];
    let mut prev = [0usize; MAX_FUZZY_CHARS + 1];
    let mut cur = [0usize; MAX_FUZZY_CHARS + 1];
    for (j, p) in prev.iter_mut().enumerate().take(width) {
        *p = j;
    }
    for i in 1..=a.len() {
        cur[0] = i;
        let mut row_min = cur[0];
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
            row_min = row_min.min(d);
        }
        if row_min > max {
            return None;
        }
        prev2 = prev;
        prev = cur;
    }
    let d = prev[b.len()];
    (d <= max).then_some(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_meets_spellings_halfway() {
        assert_eq!(fold("HÚMANO"), "humano");
        assert_eq!(fold("İnsan ile KONUŞMAK"), "insan ile konusmak");
        assert_eq!(fold("Straße"), "strasse");
        assert_eq!(fold("Pleeeease"), "pleease");
        assert_eq!(fold("أُرِيدُ إنسانًا"), fold("اريد انسانا"));
        assert_eq!(fold("ёлка"), fold("елка"));
    }

    #[test]
    fn words_keep_clauses_and_english_contractions() {
        let w = words(&fold("No, I don't want that. L'agent?"));
        let texts: Vec<_> = w.iter().map(|w| (w.text.as_str(), w.clause)).collect();
        assert_eq!(
            texts,
            [
                ("no", 0),
                ("i", 1),
                ("dont", 1),
                ("want", 1),
                ("that", 1),
                ("l", 2),
                ("agent", 2)
            ]
        );
    }

    #[test]
    fn distance_counts_edits_and_transpositions_up_to_a_bound() {
        assert_eq!(distance_within("human", "humna", 1), Some(1));
        assert_eq!(
            distance_within("representative", "represenative", 2),
            Some(1)
        );
        assert_eq!(distance_within("talk", "talked", 1), None);
        assert_eq!(distance_within("agent", "agent", 0), Some(0));
    }
}
