//! Rule files on the command line: `--rule FILE` (repeatable) loads rules
//! written in the syntax that goes inside `optimizer! { ... }`; a name given
//! to `--optimizer` or `--only` is looked up among them first (ignoring case
//! and `_`/`-`), then among the built-ins.

use optdsl::replay::name_key;
use optdsl::{builtin_rule, DynRule, Error, Rules, TextRule};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The `--rule` flag.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RuleFiles {
    /// A file of update rules (the syntax inside `optimizer! { ... }`); may be
    /// given several times. Its rules run from text (JIT-compiled, or
    /// interpreted with `OPTDSL_JIT=0`).
    #[arg(long = "rule", value_name = "FILE")]
    pub rule: Vec<PathBuf>,
}

static LOADED: OnceLock<Vec<TextRule>> = OnceLock::new();

impl RuleFiles {
    /// Loads every file's rules (once per process); a file that does not
    /// compile is an error showing every diagnostic at `FILE:LINE:COL`, and
    /// two rules of one name are refused.
    pub fn load(&self) -> Result<&'static [TextRule], Error> {
        if let Some(rules) = LOADED.get() {
            return Ok(rules);
        }
        let mut rules: Vec<TextRule> = Vec::new();
        for path in &self.rule {
            for r in Rules::load(path)? {
                if rules
                    .iter()
                    .any(|o| name_key(o.name()) == name_key(r.name()))
                {
                    return Err(Error::Invalid {
                        what: format!("--rule {}", path.display()),
                        reason: format!("a rule named `{}` was already loaded", r.name()),
                    });
                }
                rules.push(r);
            }
        }
        Ok(LOADED.get_or_init(|| rules))
    }
}

/// The rules loaded by `--rule` (empty before [`RuleFiles::load`]).
pub fn loaded() -> &'static [TextRule] {
    LOADED.get().map(Vec::as_slice).unwrap_or(&[])
}

/// The loaded rule called `name` (ignoring case and `_`/`-`), if any.
pub fn find(name: &str) -> Option<&'static TextRule> {
    let key = name_key(name);
    loaded().iter().find(|r| name_key(r.name()) == key)
}

/// The rule called `name`: a loaded rule file's, else the built-in's.
pub fn lookup(name: &str) -> Result<Box<dyn DynRule>, Error> {
    match find(name) {
        Some(r) => Ok(Box::new(r.clone())),
        None => builtin_rule(name).map_err(|e| match e {
            Error::UnknownOptimizer { name, mut known } => {
                known.extend(loaded().iter().map(|r| r.name().to_string()));
                Error::UnknownOptimizer { name, known }
            }
            other => other,
        }),
    }
}

/// The built-in `name` run from its own source text (JIT or interpreter).
pub fn interpreted(name: &str) -> Result<Box<dyn DynRule>, Error> {
    let compiled = builtin_rule(name)?;
    let mut rules = Rules::parse(compiled.info().source).map_err(|e| Error::Rule(e.to_string()))?;
    let mut rule: Box<dyn DynRule> = Box::new(rules.remove(0));
    for h in compiled.info().hypers {
        if let Some(v) = compiled.hyper(h.name) {
            rule.set_hyper(h.name, v)?;
        }
    }
    Ok(rule)
}
