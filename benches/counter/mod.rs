//! The example app's `/counter` request, shared by `benches/layer.rs` and
//! `tests/allocations.rs` so that the timings and the allocation counts
//! measure the same work.

use sealed_session::http::SessionLayer;
use sealed_session::{KeyRing, MasterKey, Sealer, SystemClock};
use std::sync::Arc;
use tower_service::Service;

/// The example app (the including file's `app` module) with the session
/// layer under a fresh key, and without it; with the layer, whose sealer
/// serves [`counter_via_sealer`].
pub fn app_routers() -> (SessionLayer, axum::Router, axum::Router) {
    let demo = crate::app::Demo::new(Arc::new(SystemClock));
    let layer = demo
        .layer(KeyRing::new(MasterKey::generate().expect("key")))
        .build()
        .expect("layer");
    (layer.clone(), demo.router(layer), demo.bare_router())
}

/// `GET path`, with `cookie` (a `name=value` pair) when given.
pub fn request(path: &str, cookie: Option<&str>) -> http::Request<axum::body::Body> {
    let mut builder = http::Request::get(path);
    if let Some(cookie) = cookie {
        builder = builder.header("cookie", cookie);
    }
    builder
        .body(axum::body::Body::empty())
        .expect("valid request")
}

/// The `name=value` pair of the cookie a first `GET /counter` sets.
pub async fn first_cookie_pair(router: &mut axum::Router) -> String {
    let response = router
        .call(request("/counter", None))
        .await
        .expect("response");
    response.headers()["set-cookie"]
        .to_str()
        .expect("ascii")
        .split(';')
        .next()
        .expect("name=value")
        .to_owned()
}

/// What the layered `/counter` asks of the sealer, without the layer:
/// open the cookie's `value`, read and increment `visits`, save.
pub async fn counter_via_sealer(sealer: &Sealer, value: &str) -> sealed_session::Saved {
    let mut session = sealer.open_async(value).await.expect("open");
    let visits: u64 = session.get("visits").expect("get").unwrap_or(0);
    session.insert("visits", visits + 1).expect("insert");
    sealer.save_async(&mut session).await.expect("save")
}
