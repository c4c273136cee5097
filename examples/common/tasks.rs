//! The tasks extension (SEP-2663, `io.modelcontextprotocol/tasks`) of the conformance fixture,
//! on rmcp's `TaskManager`: the tools the suite's `tasks-*` scenarios call and `tasks/get`,
//! `tasks/update`, `tasks/cancel`.
//!
//! rmcp gates the `tasks/*` methods (`-32021` for a client that did not declare the
//! extension, at `initialize` or in the request's `_meta`) and refuses a `CreateTaskResult`
//! to such a client with `-32021`; the fixture decides per tool: `greet` is sync only,
//! `slow_compute` makes a task when the client declared the extension and runs inline when it
//! did not, and `failing_job` / `test_tool_with_task` require a task.

use std::time::Duration;

use rmcp::ErrorData;
use rmcp::RoleServer;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, CreateTaskResult, InputRequest,
};
use rmcp::service::RequestContext;
use rmcp::task_manager::{TaskContext, TaskExit, TaskFuture, TaskManager, TaskOptions};
use serde_json::{Value, json};

/// The tools: name, description, input properties and `execution.taskSupport`.
const TOOLS: [(&str, &str, &str, &str); 7] = [
    (
        "greet",
        "Says hello (sync only)",
        r#"{"name":{"type":"string"}}"#,
        "forbidden",
    ),
    (
        "slow_compute",
        "Sleeps `seconds`, then answers; a task when the client supports tasks",
        r#"{"seconds":{"type":"number"},"label":{"type":"string"}}"#,
        "optional",
    ),
    (
        "failing_job",
        "A task whose tool fails after ~1 s",
        "{}",
        "required",
    ),
    (
        "protocol_error_job",
        "A task that fails with a protocol error",
        "{}",
        "optional",
    ),
    (
        "confirm_delete",
        "A task that asks the client to confirm, then answers",
        "{}",
        "optional",
    ),
    (
        "multi_input",
        "A task that asks two questions at once",
        "{}",
        "optional",
    ),
    (
        "test_tool_with_task",
        "Asks for a name (InputRequiredResult), then greets it in a task",
        "{}",
        "required",
    ),
];

/// The tools, with their `execution.taskSupport`.
pub fn tools() -> Vec<Value> {
    TOOLS
        .iter()
        .map(|(name, description, properties, support)| {
            let properties: Value = serde_json::from_str(properties).expect("tool properties");
            json!({
                "name": name, "description": description,
                "inputSchema": { "type": "object", "properties": properties },
                "execution": { "taskSupport": support }
            })
        })
        .collect()
}

/// Whether the request may get a `CreateTaskResult`: the client declared the extension at
/// `initialize` or in this request's `_meta`.
fn declared(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.client_capabilities()
        .is_some_and(|caps| caps.supports_tasks())
}

fn text(text: impl Into<String>) -> CallToolResult {
    CallToolResult::success(vec![rmcp::model::ContentBlock::text(text.into())])
}

fn elicit(message: &str) -> InputRequest {
    let request = crate::everything::elicit(message, "confirm", "boolean");
    serde_json::from_value(request).expect("an elicitation request")
}

/// Starts `run` as a task and answers with its `CreateTaskResult`.
fn spawn(manager: &TaskManager, run: impl FnOnce(TaskContext) -> TaskFuture) -> CallToolResponse {
    let task = manager.spawn(TaskOptions::new().with_poll_interval_ms(200), run);
    CallToolResponse::Task(CreateTaskResult::new(task))
}

/// Sleeps `seconds`, or ends as `cancelled` when `tasks/cancel` arrives first.
async fn sleep_or_cancel(task: &TaskContext, seconds: f64) -> Result<(), TaskExit> {
    tokio::select! {
        () = tokio::time::sleep(Duration::from_secs_f64(seconds.clamp(0.0, 600.0))) => Ok(()),
        () = task.cancelled() => Err(TaskExit::Cancelled),
    }
}

/// A tasks tool's answer, or `None` for another tool. `user_name` is the name an
/// `InputRequiredResult` round already gathered (for `test_tool_with_task`), and `ask` makes
/// the `InputRequiredResult` that asks for it.
pub fn call(
    manager: &TaskManager,
    request: &CallToolRequestParams,
    ctx: &RequestContext<RoleServer>,
    user_name: Option<String>,
    ask: impl FnOnce() -> CallToolResponse,
) -> Option<Result<CallToolResponse, ErrorData>> {
    let args = request.arguments.clone().unwrap_or_default();
    Some(Ok(match request.name.as_ref() {
        "greet" => {
            let name = args.get("name").and_then(Value::as_str).unwrap_or("World");
            CallToolResponse::Complete(text(format!("Hello, {name}!")))
        }
        "slow_compute" => {
            let seconds = args.get("seconds").and_then(Value::as_f64).unwrap_or(1.0);
            let label = args.get("label").and_then(Value::as_str).unwrap_or("");
            let answer = format!("computed {label} in {seconds} s");
            if !declared(ctx) {
                // No task for a client that cannot read one: the call runs inline.
                return Some(Ok(CallToolResponse::Complete(text(answer))));
            }
            spawn(manager, move |task| {
                Box::pin(async move {
                    sleep_or_cancel(&task, seconds).await?;
                    Ok(text(answer))
                })
            })
        }
        "failing_job" => spawn(manager, |task| {
            Box::pin(async move {
                sleep_or_cancel(&task, 1.0).await?;
                Ok(CallToolResult::error(vec![
                    rmcp::model::ContentBlock::text("the job failed"),
                ]))
            })
        }),
        "protocol_error_job" => spawn(manager, |_| {
            Box::pin(async {
                Err(TaskExit::Error(ErrorData::internal_error(
                    "the job crashed",
                    None,
                )))
            })
        }),
        "confirm_delete" => spawn(manager, |task| {
            Box::pin(async move {
                let answer = task
                    .request_input("confirm", elicit("Delete the file?"))
                    .await?;
                Ok(text(format!("delete: {}", answer["action"])))
            })
        }),
        "multi_input" => spawn(manager, |task| {
            Box::pin(async move {
                let (first, second) = tokio::join!(
                    task.request_input("first", elicit("First question?")),
                    task.request_input("second", elicit("Second question?")),
                );
                Ok(text(format!(
                    "answers: {} {}",
                    first?["action"], second?["action"]
                )))
            })
        }),
        "test_tool_with_task" => match user_name {
            None => ask(),
            Some(name) => spawn(manager, move |task| {
                Box::pin(async move {
                    sleep_or_cancel(&task, 0.2).await?;
                    Ok(text(format!("Hello, {name}! (from a task)")))
                })
            }),
        },
        _ => return None,
    }))
}

/// `tasks/get`, `tasks/update`, `tasks/cancel` on `manager` (rmcp has already checked that
/// the client declared the extension).
pub mod methods {
    use rmcp::ErrorData;
    use rmcp::model::{CancelTaskParams, GetTaskParams, GetTaskResult, UpdateTaskParams};
    use rmcp::task_manager::TaskManager;

    pub fn get(manager: &TaskManager, request: GetTaskParams) -> Result<GetTaskResult, ErrorData> {
        manager.get_task(&request.task_id).map(GetTaskResult::new)
    }

    pub fn update(manager: &TaskManager, request: UpdateTaskParams) -> Result<(), ErrorData> {
        manager.update_task(&request.task_id, request.input_responses)
    }

    pub fn cancel(manager: &TaskManager, request: CancelTaskParams) -> Result<(), ErrorData> {
        manager.cancel_task(&request.task_id)
    }
}
