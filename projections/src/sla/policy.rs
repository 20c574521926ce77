//! The SLA policy (targets per priority, optional business hours) and the pure business-time
//! arithmetic the SLA clock of every ticket runs on.
//!
//! Times are `DateTime<Utc>`; durations are integer **microseconds** (the precision of
//! `timestamptz`), so that a value folded in memory and one reloaded from the database are
//! bit-identical and an incremental read model equals a rebuilt one.
//!
//! A weekly calendar is a list of local `[start, end)` times per weekday in an IANA time zone.
//! Local times that do not exist (the spring-forward gap) move forward to the first instant
//! that exists; local times that happen twice (the fall-back hour) open at their first
//! occurrence and close at their last. So a `00:00–24:00` day lasts 23 hours on the day
//! clocks go forward and 25 hours on the day they go back, as the wall clock says.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use aggregates::Priority;

/// Microseconds per second.
pub const US: i64 = 1_000_000;
/// The longest target a policy may set (365 days, in minutes).
pub const MAX_TARGET_MINUTES: u32 = 525_600;

/// The targets of one priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// Business minutes from creation until the first public reply of an agent.
    #[schema(minimum = 1, maximum = 525600)]
    pub first_response_minutes: u32,
    /// Business minutes from creation until the ticket is resolved (not before the first
    /// response).
    #[schema(minimum = 1, maximum = 525600)]
    pub resolution_minutes: u32,
}

/// Targets for every priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Targets {
    pub low: Target,
    pub medium: Target,
    pub high: Target,
    pub critical: Target,
}

impl Targets {
    /// The target of a priority.
    pub fn of(&self, p: Priority) -> Target {
        match p {
            Priority::Low => self.low,
            Priority::Medium => self.medium,
            Priority::High => self.high,
            Priority::Critical => self.critical,
        }
    }
}

/// Opening hours per weekday: each a list of `["HH:MM", "HH:MM"]` local intervals
/// (`"24:00"` may end a day). An overnight shift is two intervals on consecutive days.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Week {
    #[serde(default)]
    pub mon: Vec<[String; 2]>,
    #[serde(default)]
    pub tue: Vec<[String; 2]>,
    #[serde(default)]
    pub wed: Vec<[String; 2]>,
    #[serde(default)]
    pub thu: Vec<[String; 2]>,
    #[serde(default)]
    pub fri: Vec<[String; 2]>,
    #[serde(default)]
    pub sat: Vec<[String; 2]>,
    #[serde(default)]
    pub sun: Vec<[String; 2]>,
}

impl Week {
    /// The days in order Monday..Sunday with their names.
    pub fn days(&self) -> [(&'static str, &Vec<[String; 2]>); 7] {
        [
            ("mon", &self.mon),
            ("tue", &self.tue),
            ("wed", &self.wed),
            ("thu", &self.thu),
            ("fri", &self.fri),
            ("sat", &self.sat),
            ("sun", &self.sun),
        ]
    }
}

/// When the SLA clock runs: a weekly calendar in a time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// An IANA time zone name, e.g. `Europe/Berlin`.
    pub time_zone: String,
    pub week: Week,
}

/// The SLA policy. Without `business_hours` the clock runs around the clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicy {
    pub targets: Targets,
    #[serde(default)]
    pub business_hours: Option<BusinessHours>,
}

impl Default for SlaPolicy {
    /// The built-in policy used until an admin sets one: around the clock,
    /// critical 30 min / 4 h, high 1 h / 8 h, medium 4 h / 24 h, low 8 h / 72 h.
    fn default() -> Self {
        let t = |f, r| Target {
            first_response_minutes: f,
            resolution_minutes: r,
        };
        SlaPolicy {
            targets: Targets {
                low: t(480, 4320),
                medium: t(240, 1440),
                high: t(60, 480),
                critical: t(30, 240),
            },
            business_hours: None,
        }
    }
}

/// One problem found by [`SlaPolicy::validate`]: the path below the body and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyProblem {
    pub path: Vec<String>,
    pub msg: String,
}

/// Parses `HH:MM` (00:00..=24:00) into seconds from midnight.
pub fn parse_hhmm(s: &str) -> Option<u32> {
    let (h, m) = s.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let h: u32 = h.parse().ok()?;
    let m: u32 = m.parse().ok()?;
    if m >= 60 || h > 24 || (h == 24 && m != 0) {
        return None;
    }
    Some(h * 3600 + m * 60)
}

impl SlaPolicy {
    /// Every problem with this policy (empty when it is valid).
    pub fn validate(&self) -> Vec<PolicyProblem> {
        let mut out = Vec::new();
        let mut bad = |path: &[&str], msg: &str| {
            out.push(PolicyProblem {
                path: path.iter().map(|s| s.to_string()).collect(),
                msg: msg.to_string(),
            })
        };
        for (name, t) in [
            ("low", self.targets.low),
            ("medium", self.targets.medium),
            ("high", self.targets.high),
            ("critical", self.targets.critical),
        ] {
            for (field, v) in [
                ("first_response_minutes", t.first_response_minutes),
                ("resolution_minutes", t.resolution_minutes),
            ] {
                if !(1..=MAX_TARGET_MINUTES).contains(&v) {
                    bad(
                        &["targets", name, field],
                        "Must be between 1 and 525600 minutes (365 days)",
                    );
                }
            }
            if t.first_response_minutes > t.resolution_minutes {
                bad(
                    &["targets", name, "first_response_minutes"],
                    "The first-response target cannot be longer than the resolution target",
                );
            }
        }
        if let Some(bh) = &self.business_hours {
            if bh.time_zone.parse::<Tz>().is_err() {
                bad(
                    &["business_hours", "time_zone"],
                    "Unknown time zone (use an IANA name such as Europe/Berlin)",
                );
            }
            let mut total = 0u32;
            for (day, intervals) in bh.week.days() {
                let mut parsed: Vec<(u32, u32)> = Vec::new();
                for (i, [start, end]) in intervals.iter().enumerate() {
                    let idx = i.to_string();
                    match (parse_hhmm(start), parse_hhmm(end)) {
                        (Some(s), Some(e)) if s < e => parsed.push((s, e)),
                        (Some(_), Some(_)) => bad(
                            &["business_hours", "week", day, &idx],
                            "An interval must end after it starts (use two intervals for an overnight shift)",
                        ),
                        _ => bad(
                            &["business_hours", "week", day, &idx],
                            "Times are HH:MM between 00:00 and 24:00",
                        ),
                    }
                }
                parsed.sort_unstable();
                if parsed.windows(2).any(|w| w[1].0 < w[0].1) {
                    bad(
                        &["business_hours", "week", day],
                        "Intervals of a day must not overlap",
                    );
                }
                total += parsed.iter().map(|(s, e)| e - s).sum::<u32>();
            }
            if total < 3600 {
                bad(
                    &["business_hours", "week"],
                    "Business hours must add up to at least one hour a week",
                );
            }
        }
        out
    }

    /// The calendar of this policy (around the clock if it has no valid business hours).
    pub fn calendar(&self) -> Calendar {
        let Some(bh) = &self.business_hours else {
            return Calendar::always();
        };
        let Ok(tz) = bh.time_zone.parse::<Tz>() else {
            return Calendar::always();
        };
        let mut days: [Vec<(u32, u32)>; 7] = Default::default();
        for (i, (_, intervals)) in bh.week.days().into_iter().enumerate() {
            let mut parsed: Vec<(u32, u32)> = intervals
                .iter()
                .filter_map(|[s, e]| Some((parse_hhmm(s)?, parse_hhmm(e)?)))
                .filter(|(s, e)| s < e)
                .collect();
            parsed.sort_unstable();
            days[i] = parsed;
        }
        Calendar::weekly(tz, days)
    }
}

/// When the SLA clock may run.
#[derive(Debug, Clone)]
pub enum Calendar {
    /// Around the clock.
    Always,
    /// Local `[start, end)` seconds-from-midnight per weekday (Monday first) in `tz`.
    Weekly { tz: Tz, days: [Vec<(u32, u32)>; 7] },
}

/// Calendar days searched before giving up on finding enough business time (20 years).
const MAX_DAYS: i64 = 7305;

fn micros(d: Duration) -> i64 {
    d.num_microseconds().unwrap_or(i64::MAX)
}

impl Calendar {
    /// Around the clock.
    pub fn always() -> Self {
        Calendar::Always
    }

    /// A weekly calendar (intervals sorted, non-overlapping, within a day).
    pub fn weekly(tz: Tz, days: [Vec<(u32, u32)>; 7]) -> Self {
        Calendar::Weekly { tz, days }
    }

    /// The UTC instant of local `secs` after midnight of `day` (see the module docs for gaps
    /// and repeated hours: `opening` picks the first occurrence, a closing the last).
    fn instant(tz: Tz, day: NaiveDate, secs: u32, opening: bool) -> DateTime<Utc> {
        let local: NaiveDateTime =
            day.and_time(chrono::NaiveTime::MIN) + Duration::seconds(secs as i64);
        let resolved = tz.from_local_datetime(&local);
        let found = if opening {
            resolved.earliest()
        } else {
            resolved.latest()
        };
        if let Some(t) = found {
            return t.with_timezone(&Utc);
        }
        // A spring-forward gap: the first local minute after it that exists.
        for m in 1..=24 * 60 {
            if let Some(t) = tz
                .from_local_datetime(&(local + Duration::minutes(m)))
                .earliest()
            {
                return t.with_timezone(&Utc);
            }
        }
        Utc.from_utc_datetime(&local)
    }

    /// The business intervals (UTC) of local `day`.
    fn intervals(
        tz: Tz,
        days: &[Vec<(u32, u32)>; 7],
        day: NaiveDate,
    ) -> impl Iterator<Item = (DateTime<Utc>, DateTime<Utc>)> + '_ {
        let weekday = day.weekday().num_days_from_monday() as usize;
        days[weekday].iter().map(move |&(s, e)| {
            (
                Self::instant(tz, day, s, true),
                Self::instant(tz, day, e, false),
            )
        })
    }

    /// Business microseconds in `[from, to)` (0 if `to <= from`).
    pub fn business_us(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> i64 {
        if to <= from {
            return 0;
        }
        match self {
            Calendar::Always => micros(to - from),
            Calendar::Weekly { tz, days } => {
                let first = from.with_timezone(tz).date_naive() - Duration::days(1);
                let last = to.with_timezone(tz).date_naive();
                let mut total = 0i64;
                let mut day = first;
                while day <= last {
                    for (a, b) in Self::intervals(*tz, days, day) {
                        let (a, b) = (a.max(from), b.min(to));
                        if b > a {
                            total += micros(b - a);
                        }
                    }
                    day += Duration::days(1);
                }
                total
            }
        }
    }

    /// The instant at which `us` business microseconds have passed since `from`: the last
    /// such instant, so that a target reached exactly at closing time falls due at the next
    /// opening (a clock is breached only once it runs past its target).
    pub fn add_business_us(&self, from: DateTime<Utc>, us: i64) -> DateTime<Utc> {
        let us = us.max(0);
        match self {
            Calendar::Always => from + Duration::microseconds(us),
            Calendar::Weekly { tz, days } => {
                let mut remaining = us;
                let mut day = from.with_timezone(tz).date_naive() - Duration::days(1);
                for _ in 0..MAX_DAYS {
                    for (a, b) in Self::intervals(*tz, days, day) {
                        let a = a.max(from);
                        if b <= a {
                            continue;
                        }
                        let available = micros(b - a);
                        if remaining < available {
                            return a + Duration::microseconds(remaining);
                        }
                        remaining -= available;
                    }
                    day += Duration::days(1);
                }
                // Not enough business time within 20 years: effectively never.
                from + Duration::days(MAX_DAYS)
            }
        }
    }
}

/// A policy with office hours, 09:00 to 17:00 Monday to Friday in `tz` (for tests).
#[cfg(test)]
pub(crate) fn nine_to_five(tz: &str) -> SlaPolicy {
    let hours = vec![["09:00".to_string(), "17:00".to_string()]];
    SlaPolicy {
        business_hours: Some(BusinessHours {
            time_zone: tz.into(),
            week: Week {
                mon: hours.clone(),
                tue: hours.clone(),
                wed: hours.clone(),
                thu: hours.clone(),
                fri: hours,
                ..Week::default()
            },
        }),
        ..SlaPolicy::default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn hours(h: f64) -> i64 {
        (h * 3600.0 * US as f64) as i64
    }

    fn office(tz: &str) -> Calendar {
        nine_to_five(tz).calendar()
    }

    #[test]
    fn around_the_clock_business_time_is_wall_time() {
        let c = Calendar::always();
        let a = utc("2026-03-06T10:00:00Z");
        assert_eq!(c.business_us(a, utc("2026-03-07T11:30:00Z")), hours(25.5));
        assert_eq!(
            c.add_business_us(a, hours(2.0)),
            utc("2026-03-06T12:00:00Z")
        );
        assert_eq!(c.business_us(a, a), 0);
        assert_eq!(c.business_us(a, utc("2026-03-06T09:00:00Z")), 0);
    }

    #[test]
    fn a_weekend_does_not_count() {
        // 2026-03-06 is a Friday; Berlin is UTC+1 in March before the 29th.
        let c = office("Europe/Berlin");
        let fri_4pm = utc("2026-03-06T15:00:00Z");
        let mon_10am = utc("2026-03-09T09:00:00Z");
        assert_eq!(c.business_us(fri_4pm, mon_10am), hours(2.0));
        // Two business hours from Friday 16:30 is Monday 10:30 local.
        assert_eq!(
            c.add_business_us(utc("2026-03-06T15:30:00Z"), hours(2.0)),
            utc("2026-03-09T09:30:00Z")
        );
        // Saturday to Sunday: nothing.
        assert_eq!(
            c.business_us(utc("2026-03-07T08:00:00Z"), utc("2026-03-08T20:00:00Z")),
            0
        );
        // A full week is 40 hours.
        assert_eq!(
            c.business_us(utc("2026-03-09T00:00:00Z"), utc("2026-03-16T00:00:00Z")),
            hours(40.0)
        );
    }

    #[test]
    fn a_target_reached_at_closing_time_falls_due_at_the_next_opening() {
        let c = office("Europe/Berlin");
        // Friday 09:00 local + 8 business hours: due Monday 09:00, not Friday 17:00.
        assert_eq!(
            c.add_business_us(utc("2026-03-06T08:00:00Z"), hours(8.0)),
            utc("2026-03-09T08:00:00Z")
        );
        // Starting outside business hours: zero time is the next opening.
        assert_eq!(
            c.add_business_us(utc("2026-03-07T12:00:00Z"), 0),
            utc("2026-03-09T08:00:00Z")
        );
    }

    #[test]
    fn an_overnight_shift_spans_two_days() {
        let policy = SlaPolicy {
            business_hours: Some(BusinessHours {
                time_zone: "UTC".into(),
                week: Week {
                    mon: vec![["22:00".into(), "24:00".into()]],
                    tue: vec![["00:00".into(), "06:00".into()]],
                    ..Week::default()
                },
            }),
            ..SlaPolicy::default()
        };
        assert!(policy.validate().is_empty());
        let c = policy.calendar();
        // Monday 2026-03-02 23:00 → Tuesday 05:00: six hours, across midnight.
        assert_eq!(
            c.business_us(utc("2026-03-02T23:00:00Z"), utc("2026-03-03T05:00:00Z")),
            hours(6.0)
        );
        // Monday 21:00 + 3 h → Tuesday 01:00.
        assert_eq!(
            c.add_business_us(utc("2026-03-02T21:00:00Z"), hours(3.0)),
            utc("2026-03-03T01:00:00Z")
        );
    }

    #[test]
    fn daylight_saving_changes_follow_the_wall_clock() {
        let whole_day = vec![["00:00".to_string(), "24:00".to_string()]];
        let c = SlaPolicy {
            business_hours: Some(BusinessHours {
                time_zone: "Europe/Berlin".into(),
                week: Week {
                    sun: whole_day.clone(),
                    mon: whole_day,
                    ..Week::default()
                },
            }),
            ..SlaPolicy::default()
        }
        .calendar();
        // Sunday 2026-03-29: clocks go forward, the day has 23 hours.
        assert_eq!(
            c.business_us(utc("2026-03-28T00:00:00Z"), utc("2026-03-29T22:00:00Z")),
            hours(23.0)
        );
        // Sunday 2026-10-25: clocks go back, the day has 25 hours.
        assert_eq!(
            c.business_us(utc("2026-10-24T00:00:00Z"), utc("2026-10-25T23:00:00Z")),
            hours(25.0)
        );
        // Office hours on the Monday after the change start at 08:00 UTC (09:00 CET).
        let o = office("Europe/Berlin");
        assert_eq!(
            o.business_us(utc("2026-10-23T14:00:00Z"), utc("2026-10-26T09:00:00Z")),
            hours(2.0) // Friday 16:00–17:00 CEST and Monday 09:00–10:00 CET
        );
    }

    #[test]
    fn opening_inside_the_spring_forward_gap_moves_to_the_first_real_instant() {
        let c = SlaPolicy {
            business_hours: Some(BusinessHours {
                time_zone: "Europe/Berlin".into(),
                week: Week {
                    sun: vec![["02:30".into(), "04:00".into()]],
                    ..Week::default()
                },
            }),
            ..SlaPolicy::default()
        }
        .calendar();
        // 02:30 does not exist on 2026-03-29: the day opens at 03:00 CEST (01:00 UTC).
        assert_eq!(
            c.business_us(utc("2026-03-28T00:00:00Z"), utc("2026-03-30T00:00:00Z")),
            hours(1.0)
        );
    }

    #[test]
    fn validation_names_each_bad_field() {
        let mut p = SlaPolicy::default();
        p.targets.high.first_response_minutes = 0;
        p.targets.low.first_response_minutes = 9000;
        p.business_hours = Some(BusinessHours {
            time_zone: "Mars/Olympus".into(),
            week: Week {
                mon: vec![
                    ["17:00".into(), "09:00".into()],
                    ["25:00".into(), "26:00".into()],
                ],
                tue: vec![
                    ["09:00".into(), "12:00".into()],
                    ["11:00".into(), "13:00".into()],
                ],
                ..Week::default()
            },
        });
        let paths: Vec<String> = p.validate().into_iter().map(|e| e.path.join(".")).collect();
        assert_eq!(
            paths,
            vec![
                "targets.low.first_response_minutes",
                "targets.high.first_response_minutes",
                "business_hours.time_zone",
                "business_hours.week.mon.0",
                "business_hours.week.mon.1",
                "business_hours.week.tue",
            ]
        );
        assert!(SlaPolicy::default().validate().is_empty());
        assert_eq!(parse_hhmm("24:00"), Some(86400));
        assert_eq!(parse_hhmm("24:01"), None);
        assert_eq!(parse_hhmm("9:00"), None);
    }
}
