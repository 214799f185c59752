//! HTML escaping for text from customers, agents and HubSpot: everything Baton renders as HTML
//! (the session page, HubSpot note bodies) goes through [`escape`].

/// `s` with `& < > " '` escaped, safe in element content and in quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped(&mut out, s);
    out
}

/// Appends `s`, escaped, to `out`.
pub fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn markup_and_quotes_are_escaped() {
        assert_eq!(
            super::escape(r#""><img src=x onerror='alert(1)'> & <script>"#),
            "&quot;&gt;&lt;img src=x onerror=&#39;alert(1)&#39;&gt; &amp; &lt;script&gt;"
        );
    }
}
