//! The name of an organization or a group.

use std::fmt;

use crate::error::{Field, InvalidValue};
use crate::tenancy::MAX_NAME_CHARS;
use crate::text::TextKind;

/// An organization's or a group's name: one line ([`crate::TextKind::SingleLine`]:
/// no control character, no line break), trimmed, then 1 to 200 characters.
/// Names need not be unique.
///
/// ```
/// use webhooks_domain::DisplayName;
/// assert_eq!(DisplayName::new("  Acme ").unwrap().as_str(), "Acme");
/// assert!(DisplayName::new("   ").is_err());
/// assert!(DisplayName::new("Acme\n").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

impl DisplayName {
    /// Checks `raw` and keeps it trimmed.
    pub fn new(raw: &str) -> Result<Self, InvalidValue> {
        let name = raw.trim();
        if TextKind::SingleLine.accepts(raw) && (1..=MAX_NAME_CHARS).contains(&name.chars().count())
        {
            Ok(Self(name.to_owned()))
        } else {
            Err(InvalidValue::new(
                Field::Name,
                "not 1 to 200 characters on one line once trimmed",
            ))
        }
    }

    /// The trimmed name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<DisplayName> for String {
    fn from(name: DisplayName) -> Self {
        name.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(raw: &str) -> Result<DisplayName, Field> {
        DisplayName::new(raw).map_err(|err| err.field())
    }

    #[test]
    fn empty_blank_and_over_200_characters_are_invalid_names() {
        for raw in ["", " \t ", &"é".repeat(201)] {
            assert_eq!(field(raw), Err(Field::Name), "{raw:?}");
        }
    }

    #[test]
    fn a_control_character_or_a_line_break_anywhere_is_an_invalid_name() {
        for raw in [
            "Acme\0",
            "Ac\u{1}me",
            "Acme\nInc",
            "Acme\r\n",
            "Acme\u{7f}",
            "Acme\u{9b}",
            "Acme\u{2028}",
        ] {
            assert_eq!(field(raw), Err(Field::Name), "{raw:?}");
        }
    }

    #[test]
    fn every_control_character_and_line_break_is_refused_anywhere() {
        let refused = ('\u{0}'..='\u{1f}')
            .chain(['\u{7f}', '\u{2028}', '\u{2029}'])
            .chain('\u{80}'..='\u{9f}');
        for c in refused {
            for raw in [format!("Acme{c}"), format!("{c}Acme"), format!("Ac{c}me")] {
                assert_eq!(field(&raw), Err(Field::Name), "{raw:?}");
            }
        }
    }

    #[test]
    fn names_of_printable_text_are_trimmed() {
        assert_eq!(DisplayName::new(" Acme Inc ").unwrap().as_str(), "Acme Inc");
        assert_eq!(DisplayName::new("Équipe 🚀").unwrap().as_str(), "Équipe 🚀");
        assert_eq!(DisplayName::new("\u{a0}x\u{3000}").unwrap().as_str(), "x");
    }

    #[test]
    fn a_name_is_kept_trimmed_up_to_200_characters() {
        let name = DisplayName::new(&format!("  {}  ", "é".repeat(200))).unwrap();
        assert_eq!(name.as_str(), "é".repeat(200));
        assert_eq!(String::from(name), "é".repeat(200));
    }
}
