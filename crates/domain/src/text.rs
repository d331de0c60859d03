//! The one rule on which characters a text field a client sends may hold:
//! [`TextKind`].
//!
//! Every string that reaches storage passes through here first, so bad bytes
//! get the field's own 400 and never reach the database: PostgreSQL `text`
//! cannot hold NUL at all (SQLite would store it), and control characters in
//! a name or URL corrupt logs, headers and the portal that shows them.

use unicode_general_category::{get_general_category, GeneralCategory};

/// Which characters a kind of text field takes.
///
/// | kind | refused |
/// | --- | --- |
/// | every field | NUL, the other C0 controls (U+0001–U+001F), DEL (U+007F), the C1 controls (U+0080–U+009F) |
/// | [`TextKind::FreeText`] | as above, except TAB, LF and CR |
/// | [`TextKind::SingleLine`] | all of them, and the line and paragraph separators U+2028, U+2029 |
/// | [`TextKind::Url`] | everything that is not printable: Unicode's control, format, surrogate, private-use and unassigned characters and every separator, the space included |
///
/// Fields with a closed set of values (an event `type`, `enabledEvents`,
/// `status`) need no rule of their own: they match one of their names exactly
/// or are refused.
///
/// ```
/// use webhooks_domain::TextKind;
/// assert!(TextKind::FreeText.accepts("line one\r\nline two\ttabbed"));
/// assert!(!TextKind::FreeText.accepts("nul\0"));
/// assert!(!TextKind::SingleLine.accepts("two\nlines"));
/// assert!(TextKind::SingleLine.accepts("Acme 🚀 Ümlaut"));
/// assert!(!TextKind::Url.accepts("https://a.example/a b"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextKind {
    /// Free text that may span lines, such as a webhook's `description`.
    FreeText,
    /// One line of text: organization and group names, idempotency keys.
    SingleLine,
    /// A URL as the client wrote it: printable characters only.
    Url,
}

impl TextKind {
    /// Whether every character of `raw` is allowed in a field of this kind.
    pub fn accepts(self, raw: &str) -> bool {
        raw.chars().all(|c| self.allows(c))
    }

    /// Whether `c` is allowed in a field of this kind.
    pub fn allows(self, c: char) -> bool {
        match self {
            TextKind::FreeText => !c.is_control() || matches!(c, '\t' | '\n' | '\r'),
            TextKind::SingleLine => !c.is_control() && !matches!(c, '\u{2028}' | '\u{2029}'),
            TextKind::Url => is_printable(c),
        }
    }
}

/// Python's `str.isprintable` without its exception for the ASCII space:
/// anything outside Unicode's "Other" (C*) and "Separator" (Z*) categories.
fn is_printable(c: char) -> bool {
    !matches!(
        get_general_category(c),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::Surrogate
            | GeneralCategory::PrivateUse
            | GeneralCategory::Unassigned
            | GeneralCategory::SpaceSeparator
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NUL, the rest of C0 (line breaks included), DEL and C1.
    fn controls() -> impl Iterator<Item = char> {
        ('\u{0}'..='\u{1f}')
            .chain(['\u{7f}'])
            .chain('\u{80}'..='\u{9f}')
    }

    const ALL: [TextKind; 3] = [TextKind::FreeText, TextKind::SingleLine, TextKind::Url];

    #[test]
    fn every_kind_refuses_nul_wherever_it_stands() {
        for kind in ALL {
            for raw in ["\0", "a\0", "\0a", "a\0b"] {
                assert!(!kind.accepts(raw), "{kind:?} {raw:?}");
            }
        }
    }

    #[test]
    fn free_text_refuses_every_control_but_tab_and_line_breaks() {
        for c in controls() {
            let allowed = matches!(c, '\t' | '\n' | '\r');
            assert_eq!(
                TextKind::FreeText.accepts(&format!("a{c}b")),
                allowed,
                "U+{:04X}",
                c as u32
            );
        }
        assert!(TextKind::FreeText.accepts("para\u{2028}graph\u{2029}"));
    }

    #[test]
    fn single_line_refuses_every_control_and_the_unicode_line_breaks() {
        for c in controls().chain(['\u{2028}', '\u{2029}']) {
            assert!(
                !TextKind::SingleLine.accepts(&format!("a{c}b")),
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn urls_refuse_every_control_blank_and_invisible_character() {
        let invisible = [
            ' ',
            '\u{a0}',
            '\u{3000}',
            '\u{2028}',
            '\u{2029}', // separators
            '\u{ad}',
            '\u{200b}',
            '\u{200e}',
            '\u{202e}',
            '\u{feff}', // format
            '\u{e000}',
            '\u{10ffff}', // private use, unassigned
        ];
        for c in controls().chain(invisible) {
            assert!(
                !TextKind::Url.accepts(&format!("https://a.example/{c}")),
                "U+{:04X}",
                c as u32
            );
        }
    }

    #[test]
    fn printable_text_of_any_script_is_fine_everywhere() {
        for kind in ALL {
            for raw in ["", "Acme", "Événements_用户创建-ok", "🚀", "a.b~c%00"] {
                assert!(kind.accepts(raw), "{kind:?} {raw:?}");
            }
        }
        // Joiners are format characters: part of emoji and some scripts in
        // names and descriptions, never of a URL.
        assert!(TextKind::SingleLine.accepts("👩\u{200d}💻 ZWJ"));
        assert!(TextKind::FreeText.accepts("می\u{200c}خواهم"));
        assert!(TextKind::SingleLine.accepts("Acme Inc"));
    }
}
