//! AWS errors and the envelope each protocol wraps them in.

use crate::model::Protocol;
use crate::xml::escape;

/// An error as AWS reports it: a code, a message for a person, and the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsError {
    pub code: String,
    pub message: String,
    pub status: u16,
    /// `Sender` (the caller's fault) or `Receiver` in query-protocol envelopes.
    pub sender_fault: bool,
}

impl AwsError {
    /// A client error (HTTP 400), the common case.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        AwsError {
            code: code.into(),
            message: message.into(),
            status: 400,
            sender_fault: true,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self.sender_fault = status < 500;
        self
    }

    pub fn internal(message: impl Into<String>) -> Self {
        AwsError::new("InternalError", message).with_status(500)
    }

    /// An operation that is in the service's model but that kumori does not implement yet.
    pub fn not_implemented(service: &str, operation: &str) -> Self {
        AwsError::new(
            "NotImplemented",
            format!("kumori does not implement {service}:{operation} yet."),
        )
        .with_status(501)
    }

    /// The request's `Action` names no operation of the service.
    pub fn invalid_action(service: &str, action: &str) -> Self {
        AwsError::new(
            "InvalidAction",
            format!("The action {action} is not valid for this web service ({service})."),
        )
    }
}

impl std::fmt::Display for AwsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AwsError {}

/// Renders `err` in the envelope `protocol` uses; returns the content type and body.
pub fn render(
    err: &AwsError,
    protocol: Protocol,
    xml_namespace: &str,
    request_id: &str,
) -> (&'static str, String) {
    let code = escape(&err.code);
    let message = escape(&err.message);
    match protocol {
        // EC2: no namespace, and `RequestID` with a capital D.
        Protocol::Ec2 => (
            "text/xml;charset=UTF-8",
            format!(
                "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}</Code>\
                 <Message>{message}</Message></Error></Errors><RequestID>{request_id}</RequestID></Response>"
            ),
        ),
        Protocol::Query | Protocol::RestXml => {
            let kind = if err.sender_fault {
                "Sender"
            } else {
                "Receiver"
            };
            let ns = if xml_namespace.is_empty() {
                String::new()
            } else {
                format!(" xmlns=\"{}\"", escape(xml_namespace))
            };
            (
                "text/xml",
                format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ErrorResponse{ns}><Error><Type>{kind}</Type>\
                     <Code>{code}</Code><Message>{message}</Message></Error>\
                     <RequestId>{request_id}</RequestId></ErrorResponse>"
                ),
            )
        }
        Protocol::Json => (
            "application/x-amz-json-1.1",
            serde_json::json!({ "__type": err.code, "message": err.message }).to_string(),
        ),
    }
}

/// S3 speaks its own, unwrapped error document.
pub fn render_s3(err: &AwsError, request_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{}</Code><Message>{}</Message>\
         <RequestId>{request_id}</RequestId><HostId>{request_id}</HostId></Error>",
        escape(&err.code),
        escape(&err.message)
    )
}
