//! Escaping for the text format, so that a line is always exactly one record: a process
//! name with a newline, a path with a space or an argument in Latin-1 cannot break the
//! framing that grep, awk and svcname rely on. The rules are in docs/FORMAT.md, "Text".

use std::fmt::Write as _;

/// Shown in text output for a field that has no value.
pub const ABSENT: &str = "-";

/// Appends `bytes` as one whitespace-free token: `\\` for a backslash, `\t` `\n` `\r` for
/// those, `\xHH` for a space, any other control character and each byte of invalid UTF-8.
pub fn escape_token(bytes: &[u8], out: &mut String) {
    escape(bytes, false, out);
}

/// Appends `bytes` as the free text that ends a line: as [`escape_token`], but spaces stay.
pub fn escape_free_text(bytes: &[u8], out: &mut String) {
    escape(bytes, true, out);
}

fn escape(bytes: &[u8], keep_spaces: bool, out: &mut String) {
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '\t' => out.push_str("\\t"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                ' ' if keep_spaces => out.push(' '),
                c if is_unsafe(c) || c.is_whitespace() => {
                    let mut utf8 = [0; 4];
                    for byte in c.encode_utf8(&mut utf8).bytes() {
                        let _ = write!(out, "\\x{byte:02x}");
                    }
                }
                c => out.push(c),
            }
        }
        for byte in chunk.invalid() {
            let _ = write!(out, "\\x{byte:02x}");
        }
    }
}

/// Whether a character could change how a terminal shows what follows it: a control
/// character (an escape sequence starts with one), or a bidirectional formatting one
/// (U+202E turns the rest of a line around, making `exe.txt` read as `txt.exe`).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Whether a token needs no escaping (the common case, checked before copying).
pub fn is_plain_token(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c != '\\' && !is_unsafe(c) && !c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(bytes: &[u8]) -> String {
        let mut out = String::new();
        escape_token(bytes, &mut out);
        out
    }

    fn free(bytes: &[u8]) -> String {
        let mut out = String::new();
        escape_free_text(bytes, &mut out);
        out
    }

    #[test]
    fn tokens_never_contain_whitespace() {
        let cases: &[(&[u8], &str)] = &[
            (b"nginx", "nginx"),
            (b"my app", "my\\x20app"),
            (b"a\tb\nc\rd", "a\\tb\\nc\\rd"),
            (b"back\\slash", "back\\\\slash"),
            (b"\x1b[31m", "\\x1b[31m"),
            (b"caf\xe9", "caf\\xe9"),
            ("café".as_bytes(), "café"),
            ("a\u{a0}b".as_bytes(), "a\\xc2\\xa0b"),
        ];
        for (input, expected) in cases {
            assert_eq!(token(input), *expected, "input {input:?}");
        }
    }

    #[test]
    fn free_text_keeps_spaces_only() {
        assert_eq!(free(b"sleep 30 && echo)"), "sleep 30 && echo)");
        assert_eq!(free(b"a\nb"), "a\\nb");
    }

    #[test]
    fn plain_tokens_are_recognised() {
        assert!(is_plain_token("22/tcp"));
        assert!(!is_plain_token(""));
        assert!(!is_plain_token("a b"));
        assert!(!is_plain_token("a\\b"));
    }
}
