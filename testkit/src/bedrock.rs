//! A local Amazon Bedrock runtime for the Converse API (`POST /model/{modelId}/converse`), strict
//! where Bedrock is: the request must carry a valid SigV4 signature (service `bedrock`, the test
//! credentials below), name the expected model, and have Converse's shape (system prompt, one user
//! turn, a tool with a JSON schema, the tool forced). It answers with a `toolUse` block carrying
//! the input the test chose, and can be made to throttle, hang, refuse, or answer outside the
//! schema. Usage tokens are the request's text at four characters a token.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The credentials a test's client signs with.
pub const ACCESS_KEY: &str = "AKIDBATONTEST";
pub const SECRET_KEY: &str = "baton-test-secret";
pub const REGION: &str = "us-east-1";

/// How the next Converse calls are answered.
#[derive(Debug, Clone)]
pub enum Answer {
    /// A `toolUse` with this input.
    Tool(Value),
    /// 429 ThrottlingException.
    Throttle,
    /// Nothing for this long, then the tool answer.
    Hang(Duration, Value),
    /// Text only, no tool call.
    TextOnly(String),
    /// `stopReason: content_filtered`.
    Refuse,
}

struct Shared {
    model: String,
    answer: Mutex<Answer>,
    /// Each accepted request's JSON body.
    requests: Mutex<Vec<Value>>,
    /// Requests refused, with why.
    refused: Mutex<Vec<String>>,
}

#[derive(Clone)]
pub struct BedrockServer {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

/// A well-formed answer.
pub fn good_answer() -> Value {
    json!({
        "summary": "Maria's order 48213 arrived with a cracked screen, the second time. The AI agent asked for a photo and offered nothing else. She wants a replacement or a refund.",
        "escalation_reason": "The customer asked for a person after a second broken delivery.",
        "sentiment": "negative",
        "language": "en"
    })
}

impl BedrockServer {
    /// A server for `model`, answering [`good_answer`] until told otherwise.
    pub async fn start(model: &str) -> Self {
        let shared = Arc::new(Shared {
            model: model.to_owned(),
            answer: Mutex::new(Answer::Tool(good_answer())),
            requests: Mutex::default(),
            refused: Mutex::default(),
        });
        let app = axum::Router::new()
            .route("/model/{model}/converse", axum::routing::post(converse))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn answer(&self, answer: Answer) {
        *self.shared.answer.lock().unwrap() = answer;
    }

    /// Accepted requests' bodies.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.requests.lock().unwrap().clone()
    }

    /// Refused requests' reasons.
    pub fn refused(&self) -> Vec<String> {
        self.shared.refused.lock().unwrap().clone()
    }

    /// An SDK configuration that reaches this server with the test credentials.
    pub fn sdk_config(&self) -> aws_config::SdkConfig {
        aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(REGION))
            .endpoint_url(self.url())
            .credentials_provider(
                aws_credential_types::provider::SharedCredentialsProvider::new(
                    aws_credential_types::Credentials::new(
                        ACCESS_KEY,
                        SECRET_KEY,
                        None,
                        None,
                        "baton-tests",
                    ),
                ),
            )
            .build()
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [
            ("x-amzn-ErrorType", kind),
            ("content-type", "application/json"),
        ],
        json!({ "message": message }).to_string(),
    )
        .into_response()
}

async fn converse(
    State(shared): State<Arc<Shared>>,
    Path(model): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(why) = check_signature(method.as_str(), &uri, &headers, &body) {
        shared.refused.lock().unwrap().push(why.clone());
        return error(StatusCode::FORBIDDEN, "InvalidSignatureException", &why);
    }
    let request: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                &e.to_string(),
            );
        }
    };
    if let Err(why) = check_shape(&shared.model, &model, &request) {
        shared.refused.lock().unwrap().push(why.clone());
        return error(StatusCode::BAD_REQUEST, "ValidationException", &why);
    }
    shared.requests.lock().unwrap().push(request.clone());
    let input_tokens = request.to_string().len().div_ceil(4);
    let answer = shared.answer.lock().unwrap().clone();
    let (content, stop) = match answer {
        Answer::Throttle => {
            return error(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
            );
        }
        Answer::Hang(d, input) => {
            tokio::time::sleep(d).await;
            (
                json!([{"toolUse": {"toolUseId": "tooluse_1", "name": tool_name(&request), "input": input}}]),
                "tool_use",
            )
        }
        Answer::Tool(input) => (
            json!([{"toolUse": {"toolUseId": "tooluse_1", "name": tool_name(&request), "input": input}}]),
            "tool_use",
        ),
        Answer::TextOnly(text) => (json!([{"text": text}]), "end_turn"),
        Answer::Refuse => (
            json!([{"text": "The generated text has been blocked by our content filters."}]),
            "content_filtered",
        ),
    };
    let output_tokens = content.to_string().len().div_ceil(4);
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        json!({
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": {"inputTokens": input_tokens, "outputTokens": output_tokens, "totalTokens": input_tokens + output_tokens},
            "metrics": {"latencyMs": 1}
        })
        .to_string(),
    )
        .into_response()
}

fn tool_name(request: &Value) -> Value {
    request["toolConfig"]["tools"][0]["toolSpec"]["name"].clone()
}

/// Converse's request shape, as Baton must send it.
fn check_shape(expected_model: &str, model: &str, r: &Value) -> Result<(), String> {
    if model != expected_model {
        return Err(format!("model {model} is not {expected_model}"));
    }
    if r["system"][0]["text"].as_str().is_none_or(str::is_empty) {
        return Err("no system prompt".into());
    }
    let messages = r["messages"].as_array().ok_or("no messages")?;
    if messages.len() != 1 || messages[0]["role"] != "user" {
        return Err("one user turn expected".into());
    }
    if !messages[0]["content"][0]["text"].is_string() {
        return Err("the user turn has no text".into());
    }
    let spec = &r["toolConfig"]["tools"][0]["toolSpec"];
    let name = spec["name"].as_str().ok_or("no tool")?;
    let schema = &spec["inputSchema"]["json"];
    if schema["type"] != "object" || !schema["required"].is_array() {
        return Err("the tool has no JSON schema".into());
    }
    if r["toolConfig"]["toolChoice"]["tool"]["name"] != name {
        return Err("the tool is not forced".into());
    }
    if !r["inferenceConfig"]["maxTokens"].is_u64() {
        return Err("no maxTokens".into());
    }
    Ok(())
}

/// Recomputes the request's SigV4 signature with the test credentials and compares.
fn check_signature(
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or(format!("no {name} header"))
    };
    let auth = header("authorization")?;
    let rest = auth
        .strip_prefix("AWS4-HMAC-SHA256 ")
        .ok_or("not AWS4-HMAC-SHA256")?;
    let mut credential = "";
    let mut signed = "";
    let mut signature = "";
    for part in rest.split(", ") {
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = v;
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = v;
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = v;
        }
    }
    let scope: Vec<&str> = credential.split('/').collect();
    if scope.len() != 5 || scope[0] != ACCESS_KEY || scope[2] != REGION || scope[3] != "bedrock" {
        return Err(format!(
            "credential scope {credential:?} is not {ACCESS_KEY}/…/{REGION}/bedrock"
        ));
    }
    let amz_date = header("x-amz-date")?;
    let time = time::PrimitiveDateTime::parse(
        &amz_date,
        time::macros::format_description!("[year][month][day]T[hour][minute][second]Z"),
    )
    .map_err(|e| format!("x-amz-date {amz_date:?}: {e}"))?
    .assume_utc();
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(time.unix_timestamp().max(0) as u64);
    let values: Vec<(String, String)> = signed
        .split(';')
        .map(|name| Ok((name.to_owned(), header(name)?)))
        .collect::<Result<_, String>>()?;
    let identity =
        aws_credential_types::Credentials::new(ACCESS_KEY, SECRET_KEY, None, None, "t").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("bedrock")
        .time(time)
        .settings(aws_sigv4::http_request::SigningSettings::default())
        .build()
        .map_err(|e| e.to_string())?
        .into();
    let request = aws_sigv4::http_request::SignableRequest::new(
        method,
        uri.to_string(),
        values.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        aws_sigv4::http_request::SignableBody::Bytes(body),
    )
    .map_err(|e| e.to_string())?;
    let expected = aws_sigv4::http_request::sign(request, &params).map_err(|e| e.to_string())?;
    if expected.signature() != signature {
        return Err("the SigV4 signature does not match".into());
    }
    Ok(())
}
