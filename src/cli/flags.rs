//! The command line's names for the library's settings. Library errors speak
//! of a run's settings in words ("the label column", "the constant
//! schedule", "lr for the biases"); the command line shows the flag that
//! sets each instead, so that its messages say exactly what to type.

use optdsl::Error;

/// A phrase of a library message and the command line's words for it: `{}`
/// in the pattern matches one word (letters, digits, `_ . - +`), given to
/// the replacement as `{0}`, `{1}`, ... in order.
const FLAGS: &[(&str, &str)] = &[
    ("read it from the {} column", "give --label {0}"),
    (
        "in the other column (first or last)?",
        "in the other column (--label first|last)?",
    ),
    (
        "set {}={} for the weights to resume it",
        "repeat the run's flags (--set {0}={1}) to resume it",
    ),
    (
        "set {}={} for the biases to resume it",
        "repeat the run's flags (--bias-set {0}={1}) to resume it",
    ),
    (
        "give it the state format, minimum size and rounding it was saved with",
        "repeat the run's --state, --state-min-size and --stochastic-rounding",
    ),
    ("use the constant schedule", "use --schedule constant"),
    (
        "ask for more than {} epochs",
        "ask for more than {0} --epochs",
    ),
    (
        "made with the {} generator, this run asks for the {} generator",
        "made with --rng {0}, this run asks for --rng {1}",
    ),
    (
        "give it init {} to resume it",
        "give --init {0} to resume it",
    ),
    (
        "or let it decay with a schedule",
        "or let it decay (--schedule)",
    ),
    (
        "the same data source, seed, test fraction, label column and scale",
        "the same --data, --seed, --test-fraction, --label and --scale",
    ),
    ("invalid data-parallel training:", "invalid --distributed:"),
    ("divided by the scale {} is", "divided by --scale {0} is"),
    ("give a larger scale", "give a larger --scale"),
    ("({} after the scale)", "({0} after --scale)"),
    (
        "train in f64, or divide the inputs by a scale",
        "train with --dtype f64, or divide the inputs with --scale",
    ),
    ("choose another output directory", "choose another --out"),
    (
        "give a checkpoint file a trainer saved",
        "give a checkpoint file written by --save",
    ),
    (
        "replay it through the built-in lbfgs",
        "replay it without --rule or --optimizer",
    ),
];

/// `message` with each setting the library names replaced by its flag.
pub fn with_flags(message: &str) -> String {
    let mut out = message.to_string();
    for (pattern, replacement) in FLAGS {
        out = replace_all(&out, pattern, replacement);
    }
    out
}

/// An error of a command as the command line prints it: the library's
/// message with flags for settings, and for a hyperparameter that is not a
/// finite number, the flag that sets it.
pub fn render(e: &(dyn std::error::Error + 'static)) -> String {
    let text = with_flags(&e.to_string());
    match e.downcast_ref::<Error>() {
        Some(Error::NonFiniteHyper { group, hyper, .. }) => {
            let flag = if group == "biases" {
                "--bias-set"
            } else {
                "--set"
            };
            format!("{text} ({flag} {hyper}=...)")
        }
        _ => text,
    }
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | '+')
}

/// Every match of `pattern` in `text` replaced.
fn replace_all(text: &str, pattern: &str, replacement: &str) -> String {
    let pieces: Vec<&str> = pattern.split("{}").collect();
    let mut out = String::new();
    let mut rest = text;
    'search: while let Some(at) = rest.find(pieces[0]) {
        out.push_str(&rest[..at]);
        let mut cursor = at + pieces[0].len();
        let mut words = Vec::new();
        for piece in &pieces[1..] {
            let word_len: usize = rest[cursor..]
                .chars()
                .take_while(|&c| is_word(c))
                .map(char::len_utf8)
                .sum();
            if word_len == 0 || !rest[cursor + word_len..].starts_with(piece) {
                // Not a match here: keep the first character and go on.
                let skip = rest[at..].chars().next().map_or(1, char::len_utf8);
                out.push_str(&rest[at..at + skip]);
                rest = &rest[at + skip..];
                continue 'search;
            }
            words.push(&rest[cursor..cursor + word_len]);
            cursor += word_len + piece.len();
        }
        let mut filled = replacement.to_string();
        for (k, w) in words.iter().enumerate() {
            filled = filled.replace(&format!("{{{k}}}"), w);
        }
        out.push_str(&filled);
        rest = &rest[cursor..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_flags_with_their_values() {
        assert_eq!(
            with_flags(
                "one class; if the label is in the last column, read it from the last column"
            ),
            "one class; if the label is in the last column, give --label last"
        );
        assert_eq!(
            with_flags("asks for beta2=0.99; set beta2=0.999 for the biases to resume it, or not"),
            "asks for beta2=0.99; repeat the run's flags (--bias-set beta2=0.999) to resume it, or not"
        );
        assert_eq!(
            with_flags(
                "it was made with the torch generator, this run asks for the chacha8 generator"
            ),
            "it was made with --rng torch, this run asks for --rng chacha8"
        );
        assert_eq!(
            with_flags("`1e40` divided by the scale 1e-3 is inf; give a larger scale"),
            "`1e40` divided by --scale 1e-3 is inf; give a larger --scale"
        );
        // A pattern whose word is missing is left alone, and so is text
        // around and between matches.
        assert_eq!(
            with_flags("read it from the  column"),
            "read it from the  column"
        );
        assert_eq!(
            with_flags("a: ask for more than 3 epochs; b: ask for more than 4 epochs"),
            "a: ask for more than 3 --epochs; b: ask for more than 4 --epochs"
        );
    }

    #[test]
    fn a_non_finite_hyperparameter_names_its_groups_flag() {
        let e = Error::NonFiniteHyper {
            what: "loss".into(),
            epoch: 1,
            step: 1,
            group: "biases".into(),
            hyper: "lr".into(),
            value: f64::NAN,
        };
        let text = render(&e);
        assert!(
            text.contains("give it a finite value (--bias-set lr=...)"),
            "{text}"
        );
        assert!(
            !e.to_string().contains("--"),
            "the library names no flag: {e}"
        );
    }
}
