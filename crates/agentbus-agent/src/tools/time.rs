//! The `current_time` tool: the current date and time, in UTC or an IANA time zone.

use chrono::{SecondsFormat, Utc};
use schemars::JsonSchema;
use serde::Deserialize;

use crate::tool::{FunctionTool, ToolError};

/// The arguments of `current_time`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct CurrentTimeArgs {
    /// An IANA time zone name such as `Europe/Paris` or `America/New_York`; UTC when
    /// absent.
    #[serde(default)]
    pub timezone: Option<String>,
}

/// The current time in `timezone` (UTC when `None`), as JSON.
pub fn now_in(timezone: Option<&str>) -> Result<serde_json::Value, ToolError> {
    let now = Utc::now();
    let name = timezone
        .map(str::trim)
        .filter(|z| !z.is_empty())
        .unwrap_or("UTC");
    let zone: chrono_tz::Tz = name.parse().map_err(|_| ToolError::InvalidArguments {
        tool: "current_time".into(),
        message: format!("field `timezone`: unknown IANA time zone `{name}` (e.g. `Europe/Paris`)"),
    })?;
    let local = now.with_timezone(&zone);
    Ok(serde_json::json!({
        "timezone": zone.name(),
        "datetime": local.to_rfc3339_opts(SecondsFormat::Secs, false),
        "date": local.format("%Y-%m-%d").to_string(),
        "time": local.format("%H:%M:%S").to_string(),
        "weekday": local.format("%A").to_string(),
        "utc_offset": local.format("%:z").to_string(),
        "unix_seconds": now.timestamp(),
    }))
}

/// The `current_time` tool.
pub fn current_time() -> FunctionTool {
    FunctionTool::new(
        "current_time",
        "Returns the current date and time, in UTC or in the given IANA time zone.",
        |args: CurrentTimeArgs| async move { now_in(args.timezone.as_deref()) },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zones_resolve_and_unknown_ones_are_refused() {
        let utc = now_in(None).unwrap();
        assert_eq!(utc["timezone"], "UTC");
        assert_eq!(utc["utc_offset"], "+00:00");
        let tokyo = now_in(Some("Asia/Tokyo")).unwrap();
        assert_eq!(tokyo["utc_offset"], "+09:00");
        let error = now_in(Some("Mars/Olympus")).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("unknown IANA time zone `Mars/Olympus`")
        );
    }
}
