//! The text forms of [`LrSchedule`] (what `optdsl train --schedule` takes):
//! [`FromStr`] with a typed [`ScheduleError`] for every bad string, and
//! the [`Display`](std::fmt::Display) form that parses back to the same
//! schedule.
//!
//! Positional arguments follow the name after colons (`step:3:0.5`);
//! schedules with many settings take PyTorch's argument names as
//! `:key=value` options, any order, defaults left out (`plateau:factor=0.5`).

use super::{
    Anneal, Cyclic, CyclicMode, LrSchedule, OneCycle, Plateau, PlateauMode, ThresholdMode,
};
use crate::error::Error;
use std::fmt;
use std::str::FromStr;

/// Every form, for the error messages.
const SYNTAX: &str = "constant, 1/t[:step][:DECAY], step:EVERY:GAMMA, \
    multistep:E1,E2,...:GAMMA, exp:GAMMA, cosine[:MIN_LR], linear:START:END:EPOCHS, \
    poly:EPOCHS:POWER, onecycle[:pct_start=P][:anneal_strategy=cos|linear][:div_factor=D]\
    [:final_div_factor=F][:three_phase=true], cyclic:BASE_LR:STEP_SIZE_UP[:step_size_down=N]\
    [:mode=triangular|triangular2|exp_range][:gamma=G], sgdr:T_0[:T_MULT[:ETA_MIN]], \
    plateau[:mode=min|max][:factor=F][:patience=N][:threshold=T][:threshold_mode=rel|abs]\
    [:cooldown=N][:min_lr=LR][:eps=E], piecewise:STEP=SCALE,STEP=SCALE,..., \
    warmup:EPOCHS[+SCHEDULE]";

/// What is wrong with a `--schedule` string. Each message quotes the
/// string, says what was expected and lists the forms.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScheduleError {
    /// No schedule has this name, or the name has the wrong number of
    /// arguments.
    #[error("`{text}` is not a schedule{}; use {SYNTAX}", hint.map(|h| format!(" ({h})")).unwrap_or_default())]
    Form {
        /// The whole string.
        text: String,
        /// The form of the schedule named, when the name was known.
        hint: Option<&'static str>,
    },
    /// An argument that is not a number of the kind expected.
    #[error("`{text}`: {what} `{value}` is not {expected}; use {SYNTAX}")]
    NotANumber {
        /// The whole string.
        text: String,
        /// Which argument.
        what: &'static str,
        /// What was given.
        value: String,
        /// "a whole number", "a finite number".
        expected: &'static str,
    },
    /// A number outside its range (a period of 0, a factor above 1, ...).
    #[error("`{text}`: {what} is {value} but must be {range}")]
    OutOfRange {
        /// The whole string.
        text: String,
        /// Which argument.
        what: &'static str,
        /// The value given.
        value: f64,
        /// The range, in words ("at least 1", "in (0, 1]").
        range: &'static str,
    },
    /// A list with nothing in it.
    #[error("`{text}`: no {what} given; give at least one")]
    Empty {
        /// The whole string.
        text: String,
        /// Which list.
        what: &'static str,
    },
    /// A list of epochs or steps that does not increase.
    #[error("`{text}`: {what} must increase, but {next} follows {prev}")]
    NotIncreasing {
        /// The whole string.
        text: String,
        /// Which list.
        what: &'static str,
        /// The earlier entry.
        prev: u64,
        /// The entry that is not above it.
        next: u64,
    },
    /// A `key=value` option the schedule does not take.
    #[error(
        "`{text}`: `{option}` is not an option of {name}; its options are {known} (as key=value)"
    )]
    UnknownOption {
        /// The whole string.
        text: String,
        /// The schedule's name.
        name: &'static str,
        /// The option's key.
        option: String,
        /// The options it takes.
        known: &'static str,
    },
    /// An option given twice.
    #[error("`{text}`: option `{key}` is given twice; give it once")]
    Repeated {
        /// The whole string.
        text: String,
        /// The option.
        key: String,
    },
    /// Settings that contradict each other.
    #[error("`{text}`: {reason}")]
    Conflict {
        /// The whole string.
        text: String,
        /// What contradicts what, and what to do.
        reason: &'static str,
    },
}

impl ScheduleError {
    /// The same error naming `whole` as the string (a warm-up's errors
    /// name the whole string, not the schedule after its `+`).
    fn within(self, whole: &str) -> ScheduleError {
        let text = whole.to_string();
        match self {
            ScheduleError::Form { hint, .. } => ScheduleError::Form { text, hint },
            ScheduleError::NotANumber {
                what,
                value,
                expected,
                ..
            } => ScheduleError::NotANumber {
                text,
                what,
                value,
                expected,
            },
            ScheduleError::OutOfRange {
                what, value, range, ..
            } => ScheduleError::OutOfRange {
                text,
                what,
                value,
                range,
            },
            ScheduleError::Empty { what, .. } => ScheduleError::Empty { text, what },
            ScheduleError::NotIncreasing {
                what, prev, next, ..
            } => ScheduleError::NotIncreasing {
                text,
                what,
                prev,
                next,
            },
            ScheduleError::UnknownOption {
                name,
                option,
                known,
                ..
            } => ScheduleError::UnknownOption {
                text,
                name,
                option,
                known,
            },
            ScheduleError::Repeated { key, .. } => ScheduleError::Repeated { text, key },
            ScheduleError::Conflict { reason, .. } => ScheduleError::Conflict { text, reason },
        }
    }
}

impl From<ScheduleError> for Error {
    fn from(e: ScheduleError) -> Error {
        Error::Invalid {
            what: "schedule".into(),
            reason: e.to_string(),
        }
    }
}

/// The forms of the schedules named, for [`ScheduleError::Form`].
const FORMS: &[(&str, &str)] = &[
    ("constant", "constant"),
    ("1/t", "1/t, 1/t:step, 1/t:DECAY or 1/t:step:DECAY"),
    ("inverse", "1/t, 1/t:step, 1/t:DECAY or 1/t:step:DECAY"),
    ("step", "step:EVERY:GAMMA"),
    ("multistep", "multistep:E1,E2,...:GAMMA"),
    ("exp", "exp:GAMMA"),
    ("exponential", "exp:GAMMA"),
    ("cosine", "cosine or cosine:MIN_LR"),
    ("linear", "linear:START_FACTOR:END_FACTOR:EPOCHS"),
    ("poly", "poly:EPOCHS:POWER"),
    ("polynomial", "poly:EPOCHS:POWER"),
    ("onecycle", "onecycle[:key=value...]"),
    ("cyclic", "cyclic:BASE_LR:STEP_SIZE_UP[:key=value...]"),
    (
        "sgdr",
        "sgdr:T_0, sgdr:T_0:T_MULT or sgdr:T_0:T_MULT:ETA_MIN",
    ),
    ("plateau", "plateau[:key=value...]"),
    ("piecewise", "piecewise:STEP=SCALE,STEP=SCALE,..."),
    ("warmup", "warmup:EPOCHS or warmup:EPOCHS+SCHEDULE"),
];

const ONECYCLE_OPTIONS: &str =
    "pct_start, anneal_strategy, div_factor, final_div_factor, three_phase";
const CYCLIC_OPTIONS: &str = "step_size_down, mode, gamma";
const PLATEAU_OPTIONS: &str =
    "mode, factor, patience, threshold, threshold_mode, cooldown, min_lr, eps";

/// The string being parsed, for the errors.
struct Text<'a>(&'a str);

impl Text<'_> {
    fn form(&self, name: &str) -> ScheduleError {
        ScheduleError::Form {
            text: self.0.into(),
            hint: FORMS.iter().find(|(n, _)| *n == name).map(|(_, f)| *f),
        }
    }

    fn float(&self, what: &'static str, value: &str) -> Result<f64, ScheduleError> {
        value
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| ScheduleError::NotANumber {
                text: self.0.into(),
                what,
                value: value.into(),
                expected: "a finite number",
            })
    }

    fn whole(&self, what: &'static str, value: &str) -> Result<u64, ScheduleError> {
        value
            .trim()
            .parse::<u64>()
            .map_err(|_| ScheduleError::NotANumber {
                text: self.0.into(),
                what,
                value: value.into(),
                expected: "a whole number",
            })
    }

    fn range(&self, what: &'static str, value: f64, range: &'static str) -> ScheduleError {
        ScheduleError::OutOfRange {
            text: self.0.into(),
            what,
            value,
            range,
        }
    }

    /// `value` if `ok(value)`, else an [`ScheduleError::OutOfRange`].
    fn check<T: Copy + Into<f64>>(
        &self,
        what: &'static str,
        value: T,
        range: &'static str,
        ok: impl Fn(f64) -> bool,
    ) -> Result<T, ScheduleError> {
        if ok(value.into()) {
            Ok(value)
        } else {
            Err(self.range(what, value.into(), range))
        }
    }

    fn non_negative(&self, what: &'static str, value: &str) -> Result<f64, ScheduleError> {
        let x = self.float(what, value)?;
        self.check(what, x, "at least 0", |x| x >= 0.0)
    }

    fn positive_whole(&self, what: &'static str, value: &str) -> Result<u64, ScheduleError> {
        let n = self.whole(what, value)?;
        if n == 0 {
            return Err(self.range(what, 0.0, "at least 1"));
        }
        Ok(n)
    }

    fn epochs(&self, what: &'static str, value: &str) -> Result<usize, ScheduleError> {
        let n = self.positive_whole(what, value)?;
        usize::try_from(n).map_err(|_| self.range(what, n as f64, "a number of epochs"))
    }

    /// The `key=value` options after a schedule's name, each key once (a
    /// caller refuses the keys it does not take with
    /// [`Text::unknown_option`]).
    fn options<'s>(&self, parts: &[&'s str]) -> Result<Vec<(&'s str, &'s str)>, ScheduleError> {
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for part in parts {
            // A bare word is an option without a value: its key is itself.
            let (key, value) = part.split_once('=').unwrap_or((part, ""));
            let key = key.trim();
            if seen.iter().any(|(k, _)| *k == key) {
                return Err(ScheduleError::Repeated {
                    text: self.0.into(),
                    key: key.into(),
                });
            }
            seen.push((key, value.trim()));
        }
        Ok(seen)
    }

    fn unknown_option(&self, name: &'static str, known: &'static str, key: &str) -> ScheduleError {
        ScheduleError::UnknownOption {
            text: self.0.into(),
            name,
            option: key.into(),
            known,
        }
    }

    fn bool(&self, what: &'static str, value: &str) -> Result<bool, ScheduleError> {
        match value {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(ScheduleError::NotANumber {
                text: self.0.into(),
                what,
                value: value.into(),
                expected: "true or false",
            }),
        }
    }

    fn word<T: Copy>(
        &self,
        what: &'static str,
        value: &str,
        words: &[(&str, T)],
        expected: &'static str,
    ) -> Result<T, ScheduleError> {
        words
            .iter()
            .find(|(w, _)| *w == value)
            .map(|(_, t)| *t)
            .ok_or_else(|| ScheduleError::NotANumber {
                text: self.0.into(),
                what,
                value: value.into(),
                expected,
            })
    }

    /// Entries of a comma-separated list, each checked by `entry`, strictly
    /// increasing by `key`.
    fn increasing<T>(
        &self,
        what: &'static str,
        list: &str,
        entry: impl Fn(&str) -> Result<T, ScheduleError>,
        key: impl Fn(&T) -> u64,
    ) -> Result<Vec<T>, ScheduleError> {
        if list.trim().is_empty() {
            return Err(ScheduleError::Empty {
                text: self.0.into(),
                what,
            });
        }
        let items = list.split(',').map(entry).collect::<Result<Vec<T>, _>>()?;
        for pair in items.windows(2) {
            let (prev, next) = (key(&pair[0]), key(&pair[1]));
            if next <= prev {
                return Err(ScheduleError::NotIncreasing {
                    text: self.0.into(),
                    what,
                    prev,
                    next,
                });
            }
        }
        Ok(items)
    }
}

const FACTOR_RANGE: &str = "in [0, 1]";

impl FromStr for LrSchedule {
    type Err = ScheduleError;

    /// Parses the forms `--schedule` lists: positional arguments after colons,
    /// the settings of `onecycle`, `cyclic` and `plateau` as PyTorch's
    /// argument names (`:key=value`, any order, defaults as PyTorch's),
    /// and `warmup:EPOCHS+SCHEDULE` before any of them.
    fn from_str(s: &str) -> Result<Self, ScheduleError> {
        let whole = s;
        let t = Text(whole);
        let s = s.trim();
        if let Some(rest) = s.strip_prefix("warmup:") {
            let (epochs, then) = rest.split_once('+').unwrap_or((rest, "constant"));
            let epochs = t.non_negative("the warm-up's EPOCHS", epochs)?;
            let epochs = t.check("the warm-up's EPOCHS", epochs, "above 0", |x| x > 0.0)?;
            let then = then.parse::<LrSchedule>().map_err(|e| e.within(whole))?;
            return Ok(LrSchedule::Warmup {
                epochs,
                then: Box::new(then),
            });
        }
        let parts: Vec<&str> = s.split(':').map(str::trim).collect();
        let (name, args) = (parts[0], &parts[1..]);
        let schedule = match (name, args) {
            ("constant", []) => LrSchedule::Constant,
            ("1/t" | "inverse", _) => {
                let (per_step, rest) = match args {
                    ["step", rest @ ..] => (true, rest),
                    ["epoch", rest @ ..] => (false, rest),
                    rest => (false, rest),
                };
                let decay = match rest {
                    [] => 1.0,
                    [d] => t.non_negative("the 1/t DECAY", d)?,
                    _ => return Err(t.form(name)),
                };
                LrSchedule::InverseTime { per_step, decay }
            }
            ("step", [every, gamma]) => LrSchedule::Step {
                every: t.epochs("EVERY (epochs between decays)", every)?,
                gamma: t.non_negative("GAMMA", gamma)?,
            },
            ("multistep", [milestones, gamma]) => LrSchedule::MultiStep {
                milestones: t.increasing(
                    "milestones",
                    milestones,
                    |m| t.epochs("a milestone (an epoch)", m),
                    |&m| m as u64,
                )?,
                gamma: t.non_negative("GAMMA", gamma)?,
            },
            ("exp" | "exponential", [gamma]) => LrSchedule::Exponential {
                gamma: t.non_negative("GAMMA", gamma)?,
            },
            ("cosine", []) => LrSchedule::Cosine { min: 0.0 },
            ("cosine", [min]) => LrSchedule::Cosine {
                min: t.non_negative("MIN_LR", min)?,
            },
            ("linear", [start, end, epochs]) => {
                let start = t.float("START_FACTOR", start)?;
                let end = t.float("END_FACTOR", end)?;
                LrSchedule::Linear {
                    start: t.check("START_FACTOR", start, "in (0, 1]", |x| x > 0.0 && x <= 1.0)?,
                    end: t.check("END_FACTOR", end, FACTOR_RANGE, |x| {
                        (0.0..=1.0).contains(&x)
                    })?,
                    epochs: t.epochs("EPOCHS (total_iters)", epochs)?,
                }
            }
            ("poly" | "polynomial", [epochs, power]) => LrSchedule::Polynomial {
                epochs: t.epochs("EPOCHS (total_iters)", epochs)?,
                power: t.non_negative("POWER", power)?,
            },
            ("onecycle", options) => LrSchedule::OneCycle(one_cycle(&t, options)?),
            ("cyclic", [base_lr, up, options @ ..]) => {
                LrSchedule::Cyclic(cyclic(&t, base_lr, up, options)?)
            }
            ("sgdr", [t0, rest @ ..]) if rest.len() <= 2 => LrSchedule::Restarts {
                t0: t.epochs("T_0", t0)?,
                t_mult: match rest.first() {
                    Some(m) => t.epochs("T_MULT", m)?,
                    None => 1,
                },
                min: match rest.get(1) {
                    Some(m) => t.non_negative("ETA_MIN", m)?,
                    None => 0.0,
                },
            },
            ("plateau", options) => LrSchedule::Plateau(plateau(&t, options)?),
            ("piecewise", [list]) => LrSchedule::Piecewise {
                boundaries: t.increasing(
                    "boundaries",
                    list,
                    |pair| {
                        let (step, scale) =
                            pair.split_once('=').ok_or_else(|| t.form("piecewise"))?;
                        Ok((
                            t.whole("a boundary (a step)", step)?,
                            t.non_negative("a scale", scale)?,
                        ))
                    },
                    |&(b, _)| b,
                )?,
            },
            _ => return Err(t.form(name)),
        };
        Ok(schedule)
    }
}

fn one_cycle(t: &Text, options: &[&str]) -> Result<OneCycle, ScheduleError> {
    let mut c = OneCycle::default();
    for (key, value) in t.options(options)? {
        match key {
            "pct_start" => {
                let p = t.float("pct_start", value)?;
                c.pct_start =
                    t.check("pct_start", p, FACTOR_RANGE, |x| (0.0..=1.0).contains(&x))?;
            }
            "anneal_strategy" => {
                c.anneal = t.word(
                    "anneal_strategy",
                    value,
                    &[("cos", Anneal::Cos), ("linear", Anneal::Linear)],
                    "cos or linear",
                )?;
            }
            "div_factor" => {
                let d = t.float("div_factor", value)?;
                c.div_factor = t.check("div_factor", d, "above 0", |x| x > 0.0)?;
            }
            "final_div_factor" => {
                let d = t.float("final_div_factor", value)?;
                c.final_div_factor = t.check("final_div_factor", d, "above 0", |x| x > 0.0)?;
            }
            "three_phase" => c.three_phase = t.bool("three_phase", value)?,
            other => return Err(t.unknown_option("onecycle", ONECYCLE_OPTIONS, other)),
        }
    }
    Ok(c)
}

fn cyclic(t: &Text, base_lr: &str, up: &str, options: &[&str]) -> Result<Cyclic, ScheduleError> {
    let mut c = Cyclic {
        base_lr: t.non_negative("BASE_LR", base_lr)?,
        step_size_up: t.positive_whole("STEP_SIZE_UP", up)?,
        step_size_down: None,
        mode: CyclicMode::Triangular,
        gamma: 1.0,
    };
    for (key, value) in t.options(options)? {
        match key {
            "step_size_down" => c.step_size_down = Some(t.positive_whole("step_size_down", value)?),
            "mode" => {
                c.mode = t.word(
                    "mode",
                    value,
                    &[
                        ("triangular", CyclicMode::Triangular),
                        ("triangular2", CyclicMode::Triangular2),
                        ("exp_range", CyclicMode::ExpRange),
                    ],
                    "triangular, triangular2 or exp_range",
                )?;
            }
            "gamma" => {
                let g = t.float("gamma", value)?;
                c.gamma = t.check("gamma", g, "above 0", |x| x > 0.0)?;
            }
            other => return Err(t.unknown_option("cyclic", CYCLIC_OPTIONS, other)),
        }
    }
    if c.gamma != 1.0 && c.mode != CyclicMode::ExpRange {
        return Err(ScheduleError::Conflict {
            text: t.0.into(),
            reason: "gamma scales mode=exp_range only; add mode=exp_range or drop gamma",
        });
    }
    Ok(c)
}

fn plateau(t: &Text, options: &[&str]) -> Result<Plateau, ScheduleError> {
    let mut p = Plateau::default();
    for (key, value) in t.options(options)? {
        match key {
            "mode" => {
                p.mode = t.word(
                    "mode",
                    value,
                    &[("min", PlateauMode::Min), ("max", PlateauMode::Max)],
                    "min or max",
                )?;
            }
            "factor" => {
                let f = t.float("factor", value)?;
                p.factor = t.check("factor", f, "in (0, 1)", |x| x > 0.0 && x < 1.0)?;
            }
            "patience" => p.patience = t.whole("patience", value)? as usize,
            "threshold" => p.threshold = t.non_negative("threshold", value)?,
            "threshold_mode" => {
                p.threshold_mode = t.word(
                    "threshold_mode",
                    value,
                    &[("rel", ThresholdMode::Rel), ("abs", ThresholdMode::Abs)],
                    "rel or abs",
                )?;
            }
            "cooldown" => p.cooldown = t.whole("cooldown", value)? as usize,
            "min_lr" => p.min_lr = t.non_negative("min_lr", value)?,
            "eps" => p.eps = t.non_negative("eps", value)?,
            other => return Err(t.unknown_option("plateau", PLATEAU_OPTIONS, other)),
        }
    }
    if p.mode == PlateauMode::Min && p.threshold_mode == ThresholdMode::Rel && p.threshold >= 1.0 {
        return Err(ScheduleError::Conflict {
            text: t.0.into(),
            reason: "a relative threshold of 1 or more in mode=min makes no metric an \
                     improvement; give a threshold below 1 or threshold_mode=abs",
        });
    }
    Ok(p)
}

/// Writes the form [`FromStr`] reads back to `s`.
pub(super) fn write(s: &LrSchedule, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match s {
        LrSchedule::Constant => f.write_str("constant"),
        LrSchedule::InverseTime { per_step, decay } => {
            f.write_str(if *per_step { "1/t:step" } else { "1/t" })?;
            if *decay != 1.0 {
                write!(f, ":{decay}")?;
            }
            Ok(())
        }
        LrSchedule::Step { every, gamma } => write!(f, "step:{every}:{gamma}"),
        LrSchedule::MultiStep { milestones, gamma } => {
            let list: Vec<String> = milestones.iter().map(|m| m.to_string()).collect();
            write!(f, "multistep:{}:{gamma}", list.join(","))
        }
        LrSchedule::Exponential { gamma } => write!(f, "exp:{gamma}"),
        LrSchedule::Cosine { min } if *min == 0.0 => f.write_str("cosine"),
        LrSchedule::Cosine { min } => write!(f, "cosine:{min}"),
        LrSchedule::Linear { start, end, epochs } => write!(f, "linear:{start}:{end}:{epochs}"),
        LrSchedule::Polynomial { epochs, power } => write!(f, "poly:{epochs}:{power}"),
        LrSchedule::OneCycle(c) => {
            let d = OneCycle::default();
            f.write_str("onecycle")?;
            if c.pct_start != d.pct_start {
                write!(f, ":pct_start={}", c.pct_start)?;
            }
            if c.anneal != d.anneal {
                write!(f, ":anneal_strategy={}", anneal_name(c.anneal))?;
            }
            if c.div_factor != d.div_factor {
                write!(f, ":div_factor={}", c.div_factor)?;
            }
            if c.final_div_factor != d.final_div_factor {
                write!(f, ":final_div_factor={}", c.final_div_factor)?;
            }
            if c.three_phase {
                f.write_str(":three_phase=true")?;
            }
            Ok(())
        }
        LrSchedule::Cyclic(c) => {
            write!(f, "cyclic:{}:{}", c.base_lr, c.step_size_up)?;
            if let Some(down) = c.step_size_down {
                write!(f, ":step_size_down={down}")?;
            }
            if c.mode != CyclicMode::Triangular {
                let mode = match c.mode {
                    CyclicMode::Triangular => "triangular",
                    CyclicMode::Triangular2 => "triangular2",
                    CyclicMode::ExpRange => "exp_range",
                };
                write!(f, ":mode={mode}")?;
            }
            if c.gamma != 1.0 {
                write!(f, ":gamma={}", c.gamma)?;
            }
            Ok(())
        }
        LrSchedule::Restarts { t0, t_mult, min } => {
            write!(f, "sgdr:{t0}")?;
            if *t_mult != 1 || *min != 0.0 {
                write!(f, ":{t_mult}")?;
            }
            if *min != 0.0 {
                write!(f, ":{min}")?;
            }
            Ok(())
        }
        LrSchedule::Plateau(p) => {
            let d = Plateau::default();
            f.write_str("plateau")?;
            if p.mode != d.mode {
                f.write_str(":mode=max")?;
            }
            if p.factor != d.factor {
                write!(f, ":factor={}", p.factor)?;
            }
            if p.patience != d.patience {
                write!(f, ":patience={}", p.patience)?;
            }
            if p.threshold != d.threshold {
                write!(f, ":threshold={}", p.threshold)?;
            }
            if p.threshold_mode != d.threshold_mode {
                f.write_str(":threshold_mode=abs")?;
            }
            if p.cooldown != d.cooldown {
                write!(f, ":cooldown={}", p.cooldown)?;
            }
            if p.min_lr != d.min_lr {
                write!(f, ":min_lr={}", p.min_lr)?;
            }
            if p.eps != d.eps {
                write!(f, ":eps={}", p.eps)?;
            }
            Ok(())
        }
        LrSchedule::Piecewise { boundaries } => {
            let list: Vec<String> = boundaries.iter().map(|(b, s)| format!("{b}={s}")).collect();
            write!(f, "piecewise:{}", list.join(","))
        }
        LrSchedule::Warmup { epochs, then } => write!(f, "warmup:{epochs}+{then}"),
    }
}

fn anneal_name(a: Anneal) -> &'static str {
    match a {
        Anneal::Cos => "cos",
        Anneal::Linear => "linear",
    }
}
