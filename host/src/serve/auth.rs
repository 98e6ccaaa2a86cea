/*!
Bearer tokens. The configuration holds only each token's SHA-256; a
request's token is hashed and compared with every tenant's digest in
constant time (all of them, whatever matched), so neither the comparison
nor the number of comparisons tells an attacker how close a guess was.
*/

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// The SHA-256 of a bearer token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest([u8; 32]);

impl TokenDigest {
    /// The digest of `token`.
    pub fn of(token: &str) -> TokenDigest {
        TokenDigest(Sha256::digest(token.as_bytes()).into())
    }

    /// Parses 64 hexadecimal digits (either case).
    pub fn from_hex(hex: &str) -> Result<TokenDigest, String> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return Err(format!(
                "token_sha256 must be 64 hexadecimal digits (the SHA-256 of the token), not {} characters",
                bytes.len()
            ));
        }
        let mut out = [0u8; 32];
        for (i, pair) in bytes.chunks(2).enumerate() {
            let digit = |c: u8| (c as char).to_digit(16);
            match (digit(pair[0]), digit(pair[1])) {
                (Some(hi), Some(lo)) => out[i] = (hi * 16 + lo) as u8,
                _ => return Err("token_sha256 has a character that is not hexadecimal".into()),
            }
        }
        Ok(TokenDigest(out))
    }
}

impl std::fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// The token of an `Authorization: Bearer <token>` header value; `None`
/// when the header is another scheme or malformed.
pub fn bearer(header: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(header).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The index of the digest in `known` that `token` hashes to. Every entry
/// is compared, in constant time each.
pub fn find<'a>(token: &str, known: impl IntoIterator<Item = &'a TokenDigest>) -> Option<usize> {
    let digest = TokenDigest::of(token);
    let mut found = subtle::CtOption::new(0u64, 0u8.into());
    for (i, candidate) in known.into_iter().enumerate() {
        let hit = digest.0.ct_eq(&candidate.0);
        let this = subtle::CtOption::new(i as u64, hit);
        found = subtle::CtOption::conditional_select(&found, &this, hit);
    }
    Option::<u64>::from(found).map(|i| i as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_parse_and_match_in_any_case() {
        // sha256("secret-a")
        let hex = "d8c4a7f1b4b8a3d3a5c4f6c56b83f5a7b2de3e1a4b2a07fd6fd2e19a3c1e4b90";
        assert!(TokenDigest::from_hex(hex).is_ok());
        assert!(TokenDigest::from_hex(&hex.to_uppercase()).is_ok());
        assert!(TokenDigest::from_hex("abc").unwrap_err().contains("64"));
        assert!(TokenDigest::from_hex(&"g".repeat(64)).is_err());
        let a = TokenDigest::of("secret-a");
        let b = TokenDigest::of("secret-b");
        let known = [b, a];
        assert_eq!(find("secret-a", &known), Some(1));
        assert_eq!(find("secret-b", &known), Some(0));
        assert_eq!(find("secret-c", &known), None);
        assert_eq!(find("secret-a", &[]), None);
        let hex_of_a: String = Sha256::digest(b"secret-a")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(TokenDigest::from_hex(&hex_of_a).unwrap(), a);
    }

    #[test]
    fn bearer_header_parsing() {
        assert_eq!(bearer(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer(b"bearer   abc "), Some("abc"));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bearer"), None);
        assert_eq!(bearer(&[0xff, 0xfe]), None);
    }
}
