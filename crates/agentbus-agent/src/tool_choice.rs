//! Which [`ToolChoice`] each iteration of a run sends: a [`ToolChoicePolicy`].
//!
//! Forcing a call on every iteration would never let the model answer, so a policy has
//! a choice for the first iteration and one for the iterations after it. The usual
//! policy for a small model is "required first, auto after": it must look something up
//! before answering, then it answers from the tools' results.

use agentbus_llm::ToolChoice;

/// The tool choice of each iteration of a run.
///
/// `None` for an iteration sends nothing, so the provider's default applies (the
/// [`Default`] policy sends nothing on every iteration). Nothing is
/// sent either when the agent has no tools.
///
/// ```
/// use agentbus_agent::ToolChoicePolicy;
/// use agentbus_llm::ToolChoice;
///
/// let policy: ToolChoicePolicy = "required".parse().unwrap();
/// assert_eq!(policy.for_iteration(1), Some(ToolChoice::Required));
/// assert_eq!(policy.for_iteration(2), Some(ToolChoice::Auto));
///
/// let policy: ToolChoicePolicy = "calculator,none".parse().unwrap();
/// assert_eq!(policy.for_iteration(1), Some(ToolChoice::Tool("calculator".into())));
/// assert_eq!(policy.for_iteration(3), Some(ToolChoice::None));
/// assert_eq!(policy.to_string(), "tool:calculator,none");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ToolChoicePolicy {
    /// The choice of the first iteration.
    pub first: Option<ToolChoice>,
    /// The choice of every later iteration.
    pub then: Option<ToolChoice>,
}

impl ToolChoicePolicy {
    /// `choice` on every iteration.
    pub fn always(choice: ToolChoice) -> Self {
        Self {
            first: Some(choice.clone()),
            then: Some(choice),
        }
    }

    /// `first` on the first iteration, `then` after it.
    pub fn first_then(first: ToolChoice, then: ToolChoice) -> Self {
        Self {
            first: Some(first),
            then: Some(then),
        }
    }

    /// The choice of iteration `iteration` (numbered from 1).
    pub fn for_iteration(&self, iteration: u32) -> Option<ToolChoice> {
        if iteration <= 1 {
            self.first.clone()
        } else {
            self.then.clone()
        }
    }
}

impl std::fmt::Display for ToolChoicePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let show = |choice: &Option<ToolChoice>| {
            choice
                .as_ref()
                .map_or_else(|| "default".to_owned(), ToString::to_string)
        };
        if self.first == self.then {
            f.write_str(&show(&self.first))
        } else {
            write!(f, "{},{}", show(&self.first), show(&self.then))
        }
    }
}

impl std::str::FromStr for ToolChoicePolicy {
    type Err = String;

    /// `FIRST,THEN` (each `auto`, `none`, `required`, a tool name or `default`), or one
    /// choice: a choice that forces a call (`required`, a tool name) applies to the first
    /// iteration and `auto` to the rest; `auto`, `none` and `default` apply to all.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let one = |text: &str| -> Result<Option<ToolChoice>, String> {
            match text.trim() {
                "default" => Ok(None),
                other => other.parse().map(Some),
            }
        };
        match text.split_once(',') {
            Some((first, then)) => Ok(Self {
                first: one(first)?,
                then: one(then)?,
            }),
            None => {
                let choice = one(text)?;
                let then = match &choice {
                    Some(choice) if choice.forces_a_call() => Some(ToolChoice::Auto),
                    other => other.clone(),
                };
                Ok(Self {
                    first: choice,
                    then,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_and_pairs() {
        let parse = |text: &str| text.parse::<ToolChoicePolicy>().unwrap();
        assert_eq!(parse("default"), ToolChoicePolicy::default());
        assert_eq!(parse("none"), ToolChoicePolicy::always(ToolChoice::None));
        assert_eq!(parse("auto"), ToolChoicePolicy::always(ToolChoice::Auto));
        assert_eq!(
            parse("required"),
            ToolChoicePolicy::first_then(ToolChoice::Required, ToolChoice::Auto)
        );
        assert_eq!(
            parse("required,required"),
            ToolChoicePolicy::always(ToolChoice::Required)
        );
        assert_eq!(
            parse("default,none"),
            ToolChoicePolicy {
                first: None,
                then: Some(ToolChoice::None)
            }
        );
        assert!("required,".parse::<ToolChoicePolicy>().is_err());
        for text in ["required,auto", "none", "default", "tool:calculator,none"] {
            assert_eq!(parse(text).to_string(), text);
        }
    }
}
