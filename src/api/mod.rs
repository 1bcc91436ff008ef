//! Thin HTTP handlers: parse, authorize, call library code, render. The router and
//! the layers every response goes through (security headers, panic → JSON 500,
//! a tracing span named by the route template).

pub mod error;
pub mod extract;
pub mod gun;
pub mod health;
pub mod indexer;
pub mod media;
pub mod pages;
pub mod publish;
pub mod records;
pub mod static_media;
pub mod test_routes;
pub mod users;
pub mod voice;
pub mod notes;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use http::{header, HeaderName, HeaderValue};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use crate::state::SharedState;
use error::ApiError;

pub fn router(state: SharedState) -> Router {
    let upload_limit = (state.config.media.upload_max_bytes + media::MULTIPART_OVERHEAD) as usize;
    let test_routes = if state.config.demo.test_routes {
        Router::new()
            .route("/__test/alloc", get(test_routes::alloc))
            .route("/__test/leak", get(test_routes::leak))
    } else {
        Router::new()
    };
    Router::new()
        .route("/config.js", any(pages::config_js))
        .route("/api/health", get(health::health))
        .route("/api/health/tasks", get(health::tasks))
        .route("/api/health/indexer", get(indexer::health))
        .route("/api/creators", get(indexer::creators))
        .route("/api/organizations", get(indexer::organizations))
        .route("/api/health/memory", get(health::memory))
        .route("/api/health/gun-sync", get(gun::sync_health))
        .route("/api/health/gun-sync/force", post_only(gun::sync_force))
        .route("/gun-relay/put", post_only(gun::put_main))
        .route("/gun-relay/get", get(gun::get_node))
        .route("/gun-relay/list", get(gun::list))
        .route("/api/health/memory/analyze", get(health::analyze))
        .route("/api/health/memory/samples", get(health::samples))
        .route("/admin/memory", get(health::memory_page))
        .route("/metrics", get(health::metrics))
        .route("/media/{*path}", any(static_media::web))
        .route("/api/generate/media", any(static_media::generate_by_query))
        .route("/api/generate/media/{*path}", any(static_media::generate))
        .route("/api/media", any(static_media::generate_by_query))
        .route("/api/media/upload", post_only(media::upload).layer(DefaultBodyLimit::max(upload_limit)))
        .route("/api/user/register", post_only(users::register))
        .route("/api/user/login", post_only(users::login))
        .route("/api/user/mnemonic", get(users::mnemonic).post(users::mnemonic))
        .route("/api/user/import-wallet", post_only(users::import_wallet))
        .route("/api/user/reset-password", post_only(users::reset_password))
        .route("/api/user/admin/users", get(users::admin_users))
        .route("/api/user/admin/update-status", post_only(users::admin_update_status))
        .route("/api/user/generate-calendar-jwt", post_only(users::generate_calendar))
        .route("/api/user/generate-calendar-token", post_only(users::generate_calendar))
        .route("/api/user/revoke-calendar-jwt", post_only(users::revoke_calendar))
        .route("/api/user/revoke-calendar-token", post_only(users::revoke_calendar))
        .route("/api/records", any(records::list))
        .route("/api/records/recordTypes", get(records::record_types))
        .route("/api/records/newRecord", post_only(records::new_record))
        .route("/api/records/deleteRecord", post_only(records::delete_record))
        .route("/api/records/clear-cache", post_only(records::clear_cache))
        .route("/api/templates", get(records::templates))
        .route("/api/templates/newTemplate", post_only(publish::new_template))
        .route("/api/creators/newCreator", post_only(publish::new_creator))
        .route("/api/organizations/newOrganization", post_only(publish::new_organization))
        .route("/api/publish/newRecipe", post_only(publish::new_recipe))
        .route("/api/publish/newWorkout", post_only(publish::new_workout))
        .route("/api/publish/newPost", post_only(publish::new_post))
        .route("/api/publish/newVideo", post_only(publish::new_video))
        .route("/api/publish/newImage", post_only(publish::new_image))
        .route("/api/publish/newNutritionalInfo", post_only(publish::new_nutritional_info))
        .route("/api/publish/schema", get(publish::schema))
        .route("/api/publish/schemas", get(publish::schemas))
        .route("/api/publish-status/{job_id}", get(publish::status))
        .route("/api/publish-status/{job_id}/stream", get(publish::status_stream))
        .route("/api/workout/resolve-exercises", post_only(publish::resolve_exercises))
        .route("/api/media/arweave-upload", post_only(publish::arweave_upload))
        .route("/api/media/createRecord", post_only(media::create_record))
        .route("/api/media/web-setup", post_only(media::web_setup))
        .route("/api/media/{media_id}", any(media::get))
        .route("/api/media/{media_id}/info", any(media::info))
        .nest("/api/voice", voice_routes())
        .nest("/api/alfred", voice_routes())
        .nest("/api/notes", notes_routes())
        .route("/api/generate/converse", post_only(voice::legacy_converse))
        .route("/api/generate/open-stream", get(voice::open_stream))
        .route("/api/generate/chat", post_only(voice::chat).layer(DefaultBodyLimit::max(voice::AUDIO_BODY_LIMIT)))
        .route("/api/generate/active-dialogues", get(voice::active_dialogues))
        .route("/voice", get(voice::page))
        .merge(test_routes)
        .route("/debug/pprof/heap", get(health::pprof_heap))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            track_request,
        ))
        .fallback(pages::fallback)
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("handler panicked".into()).into_response()
        }))
        .layer(axum::middleware::from_fn(check_head))
        // inside the security headers, so CORS preflight answers carry them too
        .layer(tower::util::option_layer(cors(&state.cors_rules)))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            HeaderName::from_static("x-frame-options"),
            HeaderValue::from_static("SAMEORIGIN"),
        ))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let route = req
                .extensions()
                .get::<MatchedPath>()
                .map(MatchedPath::as_str)
                .unwrap_or("unmatched");
            tracing::info_span!("request", method = %req.method(), route)
        }))
        .with_state(state)
}

/// ALFRED notes (`/api/notes`).
fn notes_routes() -> Router<SharedState> {
    let audio = || DefaultBodyLimit::max(voice::AUDIO_BODY_LIMIT);
    Router::new()
        .route("/", get(notes::list))
        .route("/from-audio", post_only(notes::from_audio).layer(audio()))
        .route("/from-audio-async", post_only(notes::from_audio_async).layer(audio()))
        .route("/jobs", get(notes::jobs))
        .route("/jobs/{job_id}", get(notes::job).delete(notes::cancel_job))
        .route("/converse", post_only(notes::converse))
        .route("/{note_hash}", get(notes::get_note))
        .route("/{note_hash}/regenerate-summary", post_only(notes::regenerate))
}

/// The voice routes, mounted under `/api/voice` and `/api/alfred` (the original's alias).
fn voice_routes() -> Router<SharedState> {
    let audio = || DefaultBodyLimit::max(voice::AUDIO_BODY_LIMIT);
    Router::new()
        .route("/converse", post_only(voice::converse).layer(audio()))
        .route("/converse-custom", post_only(voice::converse_custom).layer(audio()))
        .route("/open-stream", get(voice::open_stream))
        .route("/chat", post_only(voice::chat).layer(audio()))
        .route("/synthesize", post_only(voice::synthesize).layer(audio()))
        .route("/transcribe", post_only(voice::transcribe).layer(audio()))
        .route("/rag", post_only(voice::rag))
        .route("/voices", get(voice::voices))
        .route("/engines", get(voice::engines))
        .route("/models", get(voice::models))
        .route("/health", get(voice::health))
        .route("/elevenlabs/{voice_id}/synthesize", post_only(voice::elevenlabs))
}

/// The routes of the `--gun-relay-listen` listener: the original relay's paths.
pub fn relay_router(state: SharedState) -> Router {
    Router::new()
        .route("/put", post_only(gun::put_listener))
        .route("/get", get(gun::get_node))
        .route("/list", get(gun::list))
        .fallback(|| async { (http::StatusCode::NOT_FOUND, axum::Json(serde_json::json!({"error": "Endpoint not found"}))) })
        .with_state(state)
}

/// A POST route; any other method is a JSON 405 with `Allow: POST`.
fn post_only<H, T>(handler: H) -> axum::routing::MethodRouter<SharedState>
where
    H: axum::handler::Handler<T, SharedState>,
    T: 'static,
{
    post(handler).fallback(|| async { ApiError::MethodNotAllowed { allow: "POST" } })
}

/// Checks on the request head before routing, each answered with the connection
/// closed after: 431 past [`crate::limits::MAX_HEAD_BYTES`] (hyper's own buffer
/// cap is approximate: a head that arrives in one read may pass it), and 400 for
/// an HTTP/1.1 request without exactly one `Host` (RFC 9112 §3.2).
async fn check_head(req: Request, next: axum::middleware::Next) -> Response {
    let uri = req.uri();
    let target = uri.path_and_query().map_or(0, |p| p.as_str().len())
        + uri.authority().map_or(0, |a| a.as_str().len())
        + uri.scheme_str().map_or(0, |s| s.len() + 3);
    let line = req.method().as_str().len() + target + 11;
    let fields: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    let refusal = if line + fields > crate::limits::MAX_HEAD_BYTES {
        Some(ApiError::HeadTooLarge)
    } else if req.version() == http::Version::HTTP_11
        && req.headers().get_all(header::HOST).iter().count() != 1
    {
        Some(ApiError::BadRequest(
            "An HTTP/1.1 request needs exactly one Host header".into(),
        ))
    } else {
        None
    };
    match refusal {
        Some(e) => {
            let mut resp = e.into_response();
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            resp
        }
        None => next.run(req).await,
    }
}

/// Charge everything a request allocates — in its handler, its body and the
/// blocking work they start — to its route template, and record its status,
/// latency and bytes.
async fn track_request(
    State(st): State<SharedState>,
    req: Request,
    next: axum::middleware::Next,
) -> Response {
    use crate::memory::diag::{details, Event, Op};
    use crate::memory::track::{self, Tracked, TrackedBody};
    let template = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let kind = format!("{} {}", req.method(), template);
    let route = track::route_id(&kind);
    // With the diagnostics log on, remember what GROWTH lines need.
    // (account requests may carry a password in the query: never logged)
    let query = if req.uri().path().starts_with("/api/user/") { None } else { req.uri().query().map(str::to_owned) };
    let diag = st.diagnostics.clone().map(|d| {
        (
            d,
            query,
            track::live_bytes(route),
        )
    });
    let started = std::time::Instant::now();
    let (resp, bytes) = Tracked::new(next.run(req), route).await;
    crate::memory::metrics::record_response(route, resp.status().as_u16(), started.elapsed());
    let on_done: Option<track::OnDone> = diag.map(|(d, query, live_before)| {
        Box::new(move |allocated: u64| {
            let live_delta = track::live_bytes(route) - live_before;
            d.send(Event::Op(Op {
                kind,
                details: details(query.as_deref()),
                allocated,
                live_delta,
            }));
        }) as track::OnDone
    });
    resp.map(|body| {
        axum::body::Body::new(TrackedBody::new(
            body,
            route,
            bytes,
            crate::memory::metrics::record_request_bytes,
            on_done,
        ))
    })
}

/// CORS for browser frontends on other origins (`--cors-origins`): credentials
/// allowed (tokens travel in `Authorization`), preflights cached a day, and the
/// headers a media player needs exposed — including `Content-Range`, which the
/// original forgot. No origins configured: no layer at all (it would otherwise
/// answer every OPTIONS itself, in place of our 405 with `Allow`).
fn cors(origins: &[crate::config::OriginRule]) -> Option<tower_http::cors::CorsLayer> {
    use http::{header as h, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let origins = origins.to_vec();
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(move |origin: &HeaderValue, _| {
            let Ok(o) = origin.to_str() else { return false };
            origins.iter().any(|rule| rule.matches(o))
        }))
        .allow_methods([Method::GET, Method::HEAD, Method::POST, Method::OPTIONS])
        .allow_headers([
            h::AUTHORIZATION,
            h::CONTENT_TYPE,
            h::RANGE,
            h::IF_NONE_MATCH,
            h::IF_MATCH,
            h::IF_MODIFIED_SINCE,
            h::IF_UNMODIFIED_SINCE,
            h::IF_RANGE,
        ])
        .expose_headers([
            h::ETAG,
            h::CONTENT_RANGE,
            h::ACCEPT_RANGES,
            h::CONTENT_LENGTH,
            h::CONTENT_TYPE,
            h::LAST_MODIFIED,
            h::RETRY_AFTER,
            records::IGNORED_PARAMETERS,
        ])
        .allow_credentials(true)
        .max_age(std::time::Duration::from_secs(86_400));
    Some(layer)
}

