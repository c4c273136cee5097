//! MCP's list methods (`tools/list`, `prompts/list`, …): which methods they are, where their
//! entries sit in the result, and which request each entry stands for.
//!
//! ```
//! use mcp_edge::protocol::ListKind;
//!
//! let kind = ListKind::for_method("resources/list").unwrap();
//! assert_eq!(kind.result_field(), "resources");
//! assert_eq!((kind.entry_method(), kind.entry_key()), ("resources/read", "uri"));
//! assert_eq!(ListKind::for_method("tools/call"), None);
//! ```

/// One of MCP's list methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ListKind {
    /// `tools/list`: `result.tools`, entries named by `name`, called with `tools/call`.
    Tools,
    /// `prompts/list`: `result.prompts`, entries named by `name`, fetched with `prompts/get`.
    Prompts,
    /// `resources/list`: `result.resources`, entries named by `uri`, read with
    /// `resources/read`.
    Resources,
    /// `resources/templates/list`: `result.resourceTemplates`, entries carrying a
    /// `uriTemplate` (the URIs it expands to are read with `resources/read`).
    ResourceTemplates,
    /// `tasks/list` (2025-11-25): `result.tasks`, entries named by `taskId`, fetched with
    /// `tasks/get`.
    Tasks,
}

impl ListKind {
    /// Every list method.
    pub const ALL: [ListKind; 5] = [
        ListKind::Tools,
        ListKind::Prompts,
        ListKind::Resources,
        ListKind::ResourceTemplates,
        ListKind::Tasks,
    ];

    /// The list a JSON-RPC method asks for, if it is a list method.
    pub fn for_method(method: &str) -> Option<ListKind> {
        match method {
            "tools/list" => Some(ListKind::Tools),
            "prompts/list" => Some(ListKind::Prompts),
            "resources/list" => Some(ListKind::Resources),
            "resources/templates/list" => Some(ListKind::ResourceTemplates),
            "tasks/list" => Some(ListKind::Tasks),
            _ => None,
        }
    }

    /// The JSON-RPC method.
    pub fn method(self) -> &'static str {
        match self {
            ListKind::Tools => "tools/list",
            ListKind::Prompts => "prompts/list",
            ListKind::Resources => "resources/list",
            ListKind::ResourceTemplates => "resources/templates/list",
            ListKind::Tasks => "tasks/list",
        }
    }

    /// The field of the result that holds the entries (an array).
    pub fn result_field(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::ResourceTemplates => "resourceTemplates",
            ListKind::Tasks => "tasks",
        }
    }

    /// The request an entry stands for (the one that uses it).
    pub fn entry_method(self) -> &'static str {
        match self {
            ListKind::Tools => "tools/call",
            ListKind::Prompts => "prompts/get",
            ListKind::Resources | ListKind::ResourceTemplates => "resources/read",
            ListKind::Tasks => "tasks/get",
        }
    }

    /// The field of an entry that names it (a string).
    pub fn entry_key(self) -> &'static str {
        match self {
            ListKind::Tools | ListKind::Prompts => "name",
            ListKind::Resources => "uri",
            ListKind::ResourceTemplates => "uriTemplate",
            ListKind::Tasks => "taskId",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_method_reads_back_to_its_kind() {
        for kind in ListKind::ALL {
            assert_eq!(ListKind::for_method(kind.method()), Some(kind));
            assert!(kind.method().ends_with("/list"));
        }
        for method in ["tools/call", "roots/list/x", "list", ""] {
            assert_eq!(ListKind::for_method(method), None, "{method}");
        }
    }
}
