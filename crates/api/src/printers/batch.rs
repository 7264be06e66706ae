//! batch: jobs and cronjobs.

use serde_json::Value;

use super::core::{CONTAINERS_WIDE, IMAGES_WIDE, age, cells, col, is_deleting, name, text, wide};
use super::util::{
    arr_at, format_label_selector, get, int_at, layout_containers, len_at, opt_bool, opt_int,
    opt_str, print_bool_ptr, str_at, time_at,
};
use super::{AGE_COLUMN, Cell, Column, NAME_COLUMN, Row, docs};

static JOB_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Status", "string", "Status of the job."),
    col("Completions", "string", docs::JOB_STATUS_SUCCEEDED),
    col("Duration", "string", "Time required to complete the job."),
    AGE_COLUMN,
    CONTAINERS_WIDE,
    IMAGES_WIDE,
    wide("Selector", "string", docs::JOB_SPEC_SELECTOR),
];

static CRON_JOB_COLUMNS: &[Column] = &[
    NAME_COLUMN,
    col("Schedule", "string", docs::CRON_JOB_SPEC_SCHEDULE),
    col("Timezone", "string", docs::CRON_JOB_SPEC_TIME_ZONE),
    col("Suspend", "boolean", docs::CRON_JOB_SPEC_SUSPEND),
    col("Active", "integer", docs::CRON_JOB_STATUS_ACTIVE),
    col(
        "Last Schedule",
        "string",
        docs::CRON_JOB_STATUS_LAST_SCHEDULE_TIME,
    ),
    AGE_COLUMN,
    CONTAINERS_WIDE,
    IMAGES_WIDE,
    wide("Selector", "string", docs::JOB_SPEC_SELECTOR),
];

pub(super) fn columns(resource: &str) -> Option<&'static [Column]> {
    Some(match resource {
        "jobs" => JOB_COLUMNS,
        "cronjobs" => CRON_JOB_COLUMNS,
        _ => return None,
    })
}

pub(super) fn row(resource: &str, obj: &Value) -> Option<Row> {
    Some(match resource {
        "jobs" => job_row(obj),
        "cronjobs" => cron_job_row(obj),
        _ => return None,
    })
}

/// `hasJobCondition`: the first condition of the type decides.
fn has_condition(job: &Value, type_: &str) -> bool {
    arr_at(job, "/status/conditions")
        .iter()
        .find(|c| str_at(c, "/type") == type_)
        .is_some_and(|c| str_at(c, "/status") == "True")
}

fn job_status(job: &Value) -> &'static str {
    if has_condition(job, "Complete") {
        "Complete"
    } else if has_condition(job, "Failed") {
        "Failed"
    } else if is_deleting(job) {
        "Terminating"
    } else if has_condition(job, "Suspended") {
        "Suspended"
    } else if has_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

fn job_row(job: &Value) -> Row {
    let succeeded = int_at(job, "/status/succeeded");
    let completions = match opt_int(job, "/spec/completions") {
        Some(c) => format!("{succeeded}/{c}"),
        None => {
            let parallelism = opt_int(job, "/spec/parallelism").unwrap_or(0);
            if parallelism > 1 {
                format!("{succeeded}/1 of {parallelism}")
            } else {
                format!("{succeeded}/1")
            }
        }
    };
    let duration = match time_at(job, "/status/startTime") {
        None => text(""),
        Some(start) => Cell::Elapsed {
            start,
            end: time_at(job, "/status/completionTime"),
        },
    };
    let (names, images) = layout_containers(arr_at(job, "/spec/template/spec/containers"));
    cells(vec![
        name(job),
        text(job_status(job)),
        text(completions),
        duration,
        age(job),
        text(names),
        text(images),
        text(format_label_selector(get(job, "/spec/selector"))),
    ])
}

fn cron_job_row(cj: &Value) -> Row {
    let last_schedule = match get(cj, "/status/lastScheduleTime") {
        None => text("<none>"),
        Some(_) => Cell::Age(time_at(cj, "/status/lastScheduleTime")),
    };
    let (names, images) = layout_containers(arr_at(
        cj,
        "/spec/jobTemplate/spec/template/spec/containers",
    ));
    cells(vec![
        name(cj),
        text(str_at(cj, "/spec/schedule")),
        text(opt_str(cj, "/spec/timeZone").unwrap_or("<none>")),
        text(print_bool_ptr(opt_bool(cj, "/spec/suspend"))),
        Cell::Int(len_at(cj, "/status/active")),
        last_schedule,
        age(cj),
        text(names),
        text(images),
        text(format_label_selector(get(
            cj,
            "/spec/jobTemplate/spec/selector",
        ))),
    ])
}
