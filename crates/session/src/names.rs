//! Display names: what a name may contain, and when two names would look like the same
//! person. Everyone in a session reads the names in the participants panel and beside chat
//! lines, so a name must not be able to hide text, reverse it, or pass for a support rep's.

use tandem_protocol::NAME_MAX_CHARS;
use unicode_normalization::UnicodeNormalization;

use crate::error::SessionError;

/// The refusal when a customer's name is a rep's name in the same session.
pub(crate) const REP_NAME_TAKEN: &str =
    "that name belongs to a support rep in this session; use your own name";

/// A display name as people will see it: trimmed, runs of whitespace made one space, not
/// empty, at most [`NAME_MAX_CHARS`] characters, and free of characters that are invisible
/// or reorder text. Reps' account names go through it too when a session starts or they
/// join, so the server can use it to check a display name before saving it.
pub fn valid_name(name: &str) -> Result<String, SessionError> {
    // Trimming removes only whitespace, never an invisible or bidi character, so what is
    // checked below is everything people would see, and everything they would not.
    let name = name.trim();
    for c in name.chars() {
        if is_bidi_control(c) {
            return Err(SessionError::InvalidName(
                "a name cannot contain characters that change the direction of text",
            ));
        }
        if is_invisible(c) {
            return Err(SessionError::InvalidName(
                "a name cannot contain invisible characters",
            ));
        }
        if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
            return Err(SessionError::InvalidName(
                "a name cannot contain control characters or line breaks",
            ));
        }
    }
    // "Rita  Rep" would otherwise sit beside "Rita Rep" looking the same.
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        return Err(SessionError::InvalidName("please enter your name"));
    }
    if name.chars().count() > NAME_MAX_CHARS {
        return Err(SessionError::InvalidName(
            "that name is too long; use at most 64 characters",
        ));
    }
    Ok(name)
}

/// What a name looks like to a reader, for comparing names: compatibility forms folded
/// (NFKC: full-width letters, mathematical alphabets, ligatures), lower case, whitespace
/// collapsed, and Cyrillic and Greek letters that are drawn like Latin ones read as Latin.
/// Two names with the same key would pass for the same person in the participants panel.
pub(crate) fn name_key(name: &str) -> String {
    let folded: String = name
        .nfkc()
        .flat_map(char::to_lowercase)
        .map(latin_look_alike)
        .collect();
    folded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Unicode's explicit bidirectional formatting characters: they reorder the text around
/// them, so "Ann" plus an override can display as someone else's name.
fn is_bidi_control(c: char) -> bool {
    matches!(
        c,
        '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
    )
}

/// Characters drawn as nothing: Unicode's Default_Ignorable_Code_Point set (zero-width
/// spaces and joiners, the soft hyphen, word joiners, variation selectors, Hangul fillers,
/// tags) and the interlinear annotation marks. A name holding one looks like another name
/// that differs from it.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200D}'
            | '\u{2060}'..='\u{2065}'
            | '\u{206A}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFFB}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// The Latin letter a lower-case Cyrillic or Greek letter is drawn like, from Unicode's
/// confusables list (UTS #39); any other character is itself. NFKC leaves these alone, and
/// they are the usual way to write a look-alike of a Latin name.
fn latin_look_alike(c: char) -> char {
    match c {
        // Cyrillic
        'а' => 'a',
        'в' => 'b',
        'с' | 'ϲ' => 'c',
        'ԁ' => 'd',
        'е' | 'ё' => 'e',
        'һ' => 'h',
        'і' | 'ι' => 'i',
        'ј' | 'ϳ' => 'j',
        'к' | 'κ' => 'k',
        'ӏ' => 'l',
        'м' => 'm',
        'н' | 'η' => 'n',
        'о' | 'ο' | 'σ' => 'o',
        'р' | 'ρ' => 'p',
        'ԛ' => 'q',
        'ѕ' => 's',
        'т' | 'τ' => 't',
        'υ' => 'u',
        'ν' | 'ѵ' => 'v',
        'ԝ' | 'ω' => 'w',
        'х' | 'χ' => 'x',
        'у' | 'γ' => 'y',
        // Greek letters not already above
        'α' => 'a',
        'β' => 'b',
        'ε' => 'e',
        'ζ' => 'z',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_folds_case_whitespace_compatibility_forms_and_look_alikes() {
        let rep = name_key("Rita Rep");
        for same in [
            "rita rep",
            "  RITA   REP ",
            "Rita\u{3000}Rep",               // ideographic space
            "Ｒｉｔａ Ｒｅｐ",               // full width
            "𝐑𝐢𝐭𝐚 𝐑𝐞𝐩",                      // mathematical bold
            "Rit\u{0430} R\u{0435}\u{0440}", // Cyrillic а, е, р
            "R\u{0456}t\u{03B1} R\u{0435}p", // Cyrillic і, Greek α
        ] {
            assert_eq!(name_key(same), rep, "{same:?}");
        }
        for other in ["Rita Reps", "Rita", "Ritta Rep", "Rita-Rep"] {
            assert_ne!(name_key(other), rep, "{other:?}");
        }
    }

    #[test]
    fn valid_names_are_trimmed_and_inner_whitespace_is_collapsed() {
        assert_eq!(valid_name("\t Ann   Smith \n").expect("ok"), "Ann Smith");
        assert!(
            valid_name("Ann\tSmith").is_err(),
            "a tab inside is a control"
        );
        assert_eq!(valid_name("Ann\u{3000}Smith").expect("ok"), "Ann Smith");
    }
}
