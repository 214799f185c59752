//! Meta's `GET` verification handshake: `hub.mode=subscribe` and the verify token we share with
//! Meta's dashboard earn back the raw `hub.challenge`.

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

/// Why a handshake was refused (answered 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("hub.mode is missing or not `subscribe`")]
    WrongMode,
    #[error("hub.verify_token is missing or wrong")]
    WrongToken,
    #[error("hub.challenge is missing")]
    MissingChallenge,
}

/// Checks the query string of a verification request and returns the challenge to echo.
pub fn verify_handshake(
    query: &str,
    verify_token: &SecretString,
) -> Result<String, HandshakeError> {
    let (mut mode, mut token, mut challenge) = (None, None, None);
    for (k, v) in form_pairs(query) {
        match k.as_str() {
            "hub.mode" => mode = Some(v),
            "hub.verify_token" => token = Some(v),
            "hub.challenge" => challenge = Some(v),
            _ => {}
        }
    }
    if mode.as_deref() != Some("subscribe") {
        return Err(HandshakeError::WrongMode);
    }
    let token = token.ok_or(HandshakeError::WrongToken)?;
    let expected = verify_token.expose_secret().as_bytes();
    if !bool::from(token.as_bytes().ct_eq(expected)) {
        return Err(HandshakeError::WrongToken);
    }
    challenge
        .filter(|c| !c.is_empty())
        .ok_or(HandshakeError::MissingChallenge)
}

/// Decodes `application/x-www-form-urlencoded` pairs (`+` is a space, `%XX` a byte).
pub fn form_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match hex::decode(&bytes[i + 1..i + 3]) {
                Ok(b) => {
                    out.push(b[0]);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token() -> SecretString {
        SecretString::from("my verify+token".to_owned())
    }

    #[test]
    fn answers_the_raw_challenge() {
        let q = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=my%20verify%2Btoken";
        assert_eq!(verify_handshake(q, &token()).as_deref(), Ok("1158201444"));
    }

    #[test]
    fn refuses_wrong_token_mode_or_challenge() {
        let cases = [
            (
                "hub.mode=subscribe&hub.challenge=1&hub.verify_token=nope",
                HandshakeError::WrongToken,
            ),
            (
                "hub.mode=subscribe&hub.challenge=1",
                HandshakeError::WrongToken,
            ),
            (
                "hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=my+verify%2Btoken",
                HandshakeError::WrongMode,
            ),
            (
                "hub.challenge=1&hub.verify_token=my+verify%2Btoken",
                HandshakeError::WrongMode,
            ),
            (
                "hub.mode=subscribe&hub.verify_token=my+verify%2Btoken",
                HandshakeError::MissingChallenge,
            ),
            (
                "hub.mode=subscribe&hub.challenge=&hub.verify_token=my+verify%2Btoken",
                HandshakeError::MissingChallenge,
            ),
            ("", HandshakeError::WrongMode),
        ];
        for (q, want) in cases {
            assert_eq!(verify_handshake(q, &token()), Err(want), "{q}");
        }
    }

    #[test]
    fn decodes_percent_escapes_and_keeps_broken_ones() {
        assert_eq!(percent_decode("a%2Fb+c"), "a/b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
    }
}
