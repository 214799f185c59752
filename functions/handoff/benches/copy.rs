//! Media copy benchmark: peak memory while copying a 10 MB and a 100 MB document, and copy
//! throughput against a plain download of the same file over loopback.
//!
//! The parent serves a Graph-like API that generates the file on the fly (so its own memory does
//! not count) and runs each measurement in a fresh child process, which reports its peak RSS
//! (`VmHWM`). Objects go to s3s-fs when `BATON_TEST_S3` names it (scripts/bench starts it), else
//! to a temporary directory.

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use baton_handoff::media::{MediaCopier, MediaJob};
use baton_local::fs_objects::FsObjectStore;
use baton_shared::domain::{ConversationKey, MediaState};
use baton_shared::objects::{ObjectStore, S3Store};
use baton_shared::whatsapp::Media;
use baton_shared::whatsapp::graph::GraphConfig;
use baton_testkit::fixtures::{child_figures, print_child_figures};
use bytes::Bytes;
use futures_util::StreamExt;

const TOKEN: &str = "bench-token";
/// template.yaml's setting for the handoff function.
const MALLOC_TUNABLES: &str = "glibc.malloc.mmap_threshold=1048576";
const MB: usize = 1024 * 1024;

fn chunk() -> Bytes {
    Bytes::from(
        (0..64 * 1024)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<u8>>(),
    )
}

async fn lookup(
    State(base): State<Arc<String>>,
    Path((_v, id)): Path<(String, String)>,
) -> Response {
    let size: usize = id.trim_start_matches("doc-").parse().unwrap();
    axum::Json(serde_json::json!({"messaging_product": "whatsapp", "url": format!("{base}/file?size={size}"),
        "mime_type": "application/pdf", "file_size": size.to_string(), "id": id}))
    .into_response()
}

async fn file(Query(q): Query<std::collections::HashMap<String, String>>) -> Response {
    let size: usize = q["size"].parse().unwrap();
    let c = chunk();
    let full = size / c.len();
    let rest = size % c.len();
    let stream = futures_util::stream::iter(
        (0..full)
            .map(move |_| c.clone())
            .chain(std::iter::once(chunk().slice(..rest))),
    )
    .map(Ok::<Bytes, std::io::Error>);
    Response::builder()
        .header("content-type", "application/pdf")
        .header("content-length", size)
        .body(Body::from_stream(stream))
        .unwrap()
}

async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/file", axum::routing::get(file))
        .route("/{v}/{id}", axum::routing::get(lookup))
        .with_state(Arc::new(base.clone()));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// Keeps nothing: what the copy costs without storage.
struct Discard;

struct DiscardWriter(u64);

#[async_trait::async_trait]
impl baton_shared::objects::ObjectWriter for DiscardWriter {
    async fn part(&mut self, part: Bytes) -> Result<(), baton_shared::objects::ObjectError> {
        self.0 += part.len() as u64;
        Ok(())
    }
    async fn finish(self: Box<Self>) -> Result<u64, baton_shared::objects::ObjectError> {
        Ok(self.0)
    }
    async fn abort(self: Box<Self>) {}
}

#[async_trait::async_trait]
impl ObjectStore for Discard {
    async fn head(&self, _: &str) -> Result<Option<u64>, baton_shared::objects::ObjectError> {
        Ok(None)
    }
    async fn put(
        &self,
        _: &str,
        _: Bytes,
        _: &baton_shared::objects::ObjectMeta,
    ) -> Result<(), baton_shared::objects::ObjectError> {
        Ok(())
    }
    async fn start(
        &self,
        _: &str,
        _: &baton_shared::objects::ObjectMeta,
    ) -> Result<Box<dyn baton_shared::objects::ObjectWriter>, baton_shared::objects::ObjectError>
    {
        Ok(Box::new(DiscardWriter(0)))
    }
    async fn get(&self, _: &str) -> Result<Option<Bytes>, baton_shared::objects::ObjectError> {
        Ok(None)
    }
    async fn open(
        &self,
        _: &str,
    ) -> Result<Option<baton_shared::objects::ObjectStream>, baton_shared::objects::ObjectError>
    {
        Ok(None)
    }
    fn link(&self, key: &str) -> String {
        key.to_owned()
    }
}

async fn objects(mode: &str) -> Arc<dyn ObjectStore> {
    if mode == "discard" {
        return Arc::new(Discard);
    }
    match std::env::var("BATON_TEST_S3") {
        Ok(endpoint) if !endpoint.is_empty() => {
            let conf = aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .endpoint_url(endpoint)
                .force_path_style(true)
                .credentials_provider(aws_sdk_s3::config::Credentials::new(
                    "test", "test", None, None, "bench",
                ))
                .build();
            let bucket = format!("baton-bench-{}", std::process::id());
            let s3 = S3Store::new(aws_sdk_s3::Client::from_conf(conf), bucket);
            s3.ensure_bucket().await.unwrap();
            Arc::new(s3)
        }
        _ => Arc::new(FsObjectStore::new(
            std::env::temp_dir().join(format!("baton-bench-{}", std::process::id())),
        )),
    }
}

/// Child: one measurement; prints `seconds peak_kib`.
async fn child(mode: &str, size: usize, base: &str) {
    let started = Instant::now();
    match mode {
        "download" => {
            let client = reqwest::Client::new();
            let resp = client
                .get(format!("{base}/file?size={size}"))
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap();
            let mut stream = resp.bytes_stream();
            let mut total = 0;
            while let Some(c) = stream.next().await {
                total += c.unwrap().len();
            }
            assert_eq!(total, size);
        }
        "upload" => {
            // The store alone: the same bytes, already in memory, written part by part.
            let objects = objects(mode).await;
            let data = Bytes::from(
                std::iter::repeat_n(chunk(), size / chunk().len() + 1)
                    .flatten()
                    .take(size)
                    .collect::<Vec<u8>>(),
            );
            let started = Instant::now();
            let meta = baton_shared::objects::ObjectMeta {
                content_type: "application/pdf".into(),
                ..Default::default()
            };
            let mut w = objects
                .start(&format!("upload-{}", std::process::id()), &meta)
                .await
                .unwrap();
            for part in data.chunks(baton_shared::objects::PART_BYTES) {
                w.part(data.slice_ref(part)).await.unwrap();
            }
            w.finish().await.unwrap();
            print_child_figures(started);
            return;
        }
        _ => {
            let objects = objects(mode).await;
            let mut graph = GraphConfig::new(base, "v23.0", Some(TOKEN.to_owned().into()));
            graph.read_timeout = Duration::from_secs(60);
            let copier = MediaCopier::new(graph, objects.clone()).unwrap();
            let job = MediaJob {
                conversation: ConversationKey::new("1", format!("bench-{}", std::process::id())),
                wamid: format!("wamid.bench-{size}"),
                kind: "document".into(),
                media: Media {
                    id: format!("doc-{size}"),
                    filename: Some("big.pdf".into()),
                    ..Media::default()
                },
                attempts_before: 0,
                attempts: None,
                order_key: None,
            };
            let record = copier.copy(&job, 0).await;
            assert_eq!(record.state, MediaState::Copied, "{record:?}");
            assert_eq!(record.bytes, Some(size as u64));
        }
    }
    print_child_figures(started);
}

fn measure(mode: &str, size: usize, base: &str) -> (f64, u64) {
    child_figures(
        Command::new(std::env::current_exe().unwrap())
            .args(["--child", mode, &size.to_string(), base])
            // As template.yaml sets it for the function: part buffers go back to the system when
            // freed.
            .env("GLIBC_TUNABLES", MALLOC_TUNABLES),
    )
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        rt.block_on(child(
            &args[i + 1],
            args[i + 2].parse().unwrap(),
            &args[i + 3],
        ));
        return;
    }
    let base = rt.block_on(serve());
    let target = if std::env::var("BATON_TEST_S3").is_ok_and(|e| !e.is_empty()) {
        "s3s-fs"
    } else {
        "a local directory"
    };
    println!(
        "media copy to {target} (parts of {} MiB, two uploading while the next is read)",
        baton_shared::objects::PART_BYTES / MB
    );
    for size in [10 * MB, 50 * MB, 100 * MB] {
        let runs = 3;
        let downloads: Vec<(f64, u64)> = (0..runs)
            .map(|_| measure("download", size, &base))
            .collect();
        let copies: Vec<(f64, u64)> = (0..runs).map(|_| measure("copy", size, &base)).collect();
        let discards: Vec<(f64, u64)> =
            (0..runs).map(|_| measure("discard", size, &base)).collect();
        let x = median(discards.iter().map(|x| x.0).collect());
        let uploads: Vec<(f64, u64)> = (0..runs).map(|_| measure("upload", size, &base)).collect();
        let u = median(uploads.iter().map(|x| x.0).collect());
        let d = median(downloads.iter().map(|x| x.0).collect());
        let c = median(copies.iter().map(|x| x.0).collect());
        let rss = copies.iter().map(|x| x.1).max().unwrap() as f64 / 1024.0;
        let base_rss = downloads.iter().map(|x| x.1).max().unwrap() as f64 / 1024.0;
        println!(
            "{:>4} MB: copy {:.3} s ({:.0} MB/s), plain download {:.3} s ({:.0} MB/s), throughput ratio {:.2}x; peak RSS copy {:.1} MiB (download alone {:.1} MiB);\n         the copier into nothing {:.3} s ({:.2}x the download); the store alone, bytes already in memory, {:.3} s (copy at {:.2}x the store's speed)",
            size / MB,
            c,
            size as f64 / MB as f64 / c,
            d,
            size as f64 / MB as f64 / d,
            d / c,
            rss,
            base_rss,
            x,
            d / x,
            u,
            u / c
        );
    }
}
